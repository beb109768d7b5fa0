<?php
// gamegate from PHP without gRPC: Debian's php-cli and php-curl, plain curl_init/curl_exec of the
// Connect protocol's JSON (https://connectrpc.com/docs/protocol), as a PHP game server would.
//
// Usage: php client.php GRPC_ADDR SANDBOX_URL
//
// Checks: SetUserStorage and RemoveUserStorage by POST (the sandbox's stored state through its
// admin API), GetDawankaInfo by POST and by GET (a read-only RPC), the KEY_TOO_LONG error
// (HTTP 400, code invalid_argument, details with base64 `value` and JSON `debug`: ErrorInfo
// reason and domain, BadRequest field), an unknown method (HTTP 404, unimplemented), and
// Connect-Timeout-Ms against a sandbox latency fault (HTTP 504, deadline_exceeded, in time).
// Exits 1 on any mismatch.

declare(strict_types=1);

if ($argc !== 3) {
    fwrite(STDERR, "usage: php client.php GRPC_ADDR SANDBOX_URL\n");
    exit(2);
}
$base = 'http://' . $argv[1];
$sandbox = rtrim($argv[2], '/');

// Demo fixture (README, crates/sandbox/README.md).
const MG_APP = '1112345678';
const MG_USER = ['openid' => 'A0B1C2D3E4F5061728394A5B6C7D8E9F', 'sessionKey' => 'HyVFkGl5F5OQWJZZaNzBBg=='];
const OA_APP = '1110766236';
const OA_SUPER = ['openid' => 'AB055EE03EE6F7CCB31F6CCE75A50A38', 'openkey' => 'CC11B9096D458AEFDEF72981AE5A136D'];

$passes = 0;
$failures = [];

function check(string $name, bool $condition, string $detail = ''): void
{
    global $passes, $failures;
    if ($condition) {
        $passes++;
        echo "  ok   $name\n";
    } else {
        $failures[] = $name;
        echo "  FAIL $name: $detail\n";
    }
}

/** One HTTP exchange with curl: [status, headers (lower-case names), body, seconds]. */
function http(string $method, string $url, array $headers = [], ?string $body = null, int $timeoutMs = 10000): array
{
    $responseHeaders = [];
    $curl = curl_init($url);
    curl_setopt_array($curl, [
        CURLOPT_CUSTOMREQUEST => $method,
        CURLOPT_RETURNTRANSFER => true,
        CURLOPT_HTTPHEADER => $headers,
        CURLOPT_TIMEOUT_MS => $timeoutMs,
        CURLOPT_HTTP_VERSION => CURL_HTTP_VERSION_1_1,
        CURLOPT_HEADERFUNCTION => function ($curl, string $line) use (&$responseHeaders): int {
            $parts = explode(':', $line, 2);
            if (count($parts) === 2) {
                $responseHeaders[strtolower(trim($parts[0]))] = trim($parts[1]);
            }
            return strlen($line);
        },
    ]);
    if ($body !== null) {
        curl_setopt($curl, CURLOPT_POSTFIELDS, $body);
    }
    $started = microtime(true);
    $answer = curl_exec($curl);
    $seconds = microtime(true) - $started;
    if ($answer === false) {
        $error = curl_error($curl);
        curl_close($curl);
        throw new RuntimeException("$method $url: $error");
    }
    $status = curl_getinfo($curl, CURLINFO_RESPONSE_CODE);
    curl_close($curl);
    return [$status, $responseHeaders, $answer, $seconds];
}

/** A Connect unary call with a JSON body: [status, decoded body, headers, seconds]. */
function connect(string $rpc, array $request, array $extraHeaders = []): array
{
    global $base;
    [$status, $headers, $body, $seconds] = http('POST', "$base/$rpc", array_merge([
        'Content-Type: application/json',
        'Connect-Protocol-Version: 1',
    ], $extraHeaders), json_encode($request, JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES));
    return [$status, json_decode($body, true), $headers, $seconds];
}

function admin(string $method, string $path, ?array $body = null): mixed
{
    global $sandbox;
    [$status, , $answer] = http($method, $sandbox . $path,
        $body === null ? [] : ['Content-Type: application/json'],
        $body === null ? null : json_encode($body));
    if ($status >= 300) {
        throw new RuntimeException("sandbox $method $path: HTTP $status");
    }
    return $answer === '' ? null : json_decode($answer, true);
}

function stored(): array
{
    return admin('GET', '/_sandbox/minigame/storage?appid=' . MG_APP . '&openid=' . MG_USER['openid']);
}

/** The Connect error's detail of `type`, with `value` checked to be (unpadded) base64. */
function detail(?array $error, string $type): ?array
{
    foreach ($error['details'] ?? [] as $detail) {
        if (($detail['type'] ?? '') === $type) {
            $value = $detail['value'] ?? '';
            $padded = $value . str_repeat('=', (4 - strlen($value) % 4) % 4);
            $detail['decoded'] = base64_decode($padded, true);
            return $detail;
        }
    }
    return null;
}

$steps = [
    'storage' => function (): void {
        $value = 'php-' . time();
        [$status, $answer, $headers] = connect('gamegate.v1.StorageService/SetUserStorage',
            ['appId' => MG_APP, 'user' => MG_USER, 'kvList' => [['key' => 'score', 'value' => $value]]]);
        check('SetUserStorage: HTTP 200, application/json, {}',
            $status === 200 && ($headers['content-type'] ?? '') === 'application/json' && $answer === [],
            "HTTP $status " . json_encode($answer));
        check('SetUserStorage stored score', (stored()['kv']['score'] ?? null) === $value, json_encode(stored()));
        // proto field names are accepted as well as lowerCamelCase
        [$status, $answer] = connect('gamegate.v1.StorageService/RemoveUserStorage',
            ['app_id' => MG_APP, 'user' => ['openid' => MG_USER['openid'], 'session_key' => MG_USER['sessionKey']],
             'keys' => ['score']]);
        check('RemoveUserStorage: HTTP 200', $status === 200, "HTTP $status " . json_encode($answer));
        check('RemoveUserStorage removed score', !array_key_exists('score', stored()['kv'] ?? []), json_encode(stored()));
    },
    'dawanka' => function (): void {
        global $base;
        $request = ['appId' => OA_APP, 'user' => OA_SUPER, 'version' => 'DAWANKA_DATA_VERSION_V2'];
        [$status, $info] = connect('gamegate.v1.DawankaService/GetDawankaInfo', $request);
        // int64 as a string, enums by name (the proto3 JSON mapping)
        check('GetDawankaInfo by POST (super dawanka)',
            $status === 200 && ($info['score'] ?? null) === '3200' && ($info['level'] ?? null) === 'DAWANKA_LEVEL_SUPER'
            && ($info['discountPercent'] ?? null) === 20, "HTTP $status " . json_encode($info));
        $query = http_build_query(['connect' => 'v1', 'encoding' => 'json', 'message' => json_encode($request)]);
        [$status, , $body] = http('GET', "$base/gamegate.v1.DawankaService/GetDawankaInfo?$query");
        check('GetDawankaInfo by GET is the same answer', $status === 200 && json_decode($body, true) === $info,
            "HTTP $status $body");
    },
    'KEY_TOO_LONG' => function (): void {
        [$status, $error] = connect('gamegate.v1.StorageService/SetUserStorage',
            ['appId' => MG_APP, 'user' => MG_USER, 'kvList' => [['key' => str_repeat('k', 129), 'value' => '1']]]);
        check('129-byte key: HTTP 400, code invalid_argument',
            $status === 400 && ($error['code'] ?? null) === 'invalid_argument', "HTTP $status " . json_encode($error));
        $info = detail($error, 'google.rpc.ErrorInfo');
        check('ErrorInfo debug: reason KEY_TOO_LONG, domain gamegate, a trace_id',
            ($info['debug']['reason'] ?? null) === 'KEY_TOO_LONG' && ($info['debug']['domain'] ?? null) === 'gamegate'
            && !empty($info['debug']['metadata']['trace_id']), json_encode($info));
        check('ErrorInfo value is base64 of the message (reason inside)',
            is_string($info['decoded'] ?? null) && str_contains($info['decoded'], 'KEY_TOO_LONG'), json_encode($info));
        $bad = detail($error, 'google.rpc.BadRequest');
        check('BadRequest field kv_list[0].key',
            ($bad['debug']['fieldViolations'][0]['field'] ?? null) === 'kv_list[0].key' && is_string($bad['decoded']),
            json_encode($bad));
    },
    'unknown method' => function (): void {
        [$status, $error] = connect('gamegate.v1.StorageService/GetUserStorage', ['appId' => MG_APP]);
        check('unknown method: HTTP 404, code unimplemented',
            $status === 404 && ($error['code'] ?? null) === 'unimplemented', "HTTP $status " . json_encode($error));
    },
    'deadline' => function (): void {
        admin('POST', '/_sandbox/faults', ['path' => '/v3/user/get_dawanka_info', 'latency_ms' => 3000]);
        try {
            // curl waits up to 10 s: the 500 ms deadline is gamegate's to keep.
            [$status, $error, , $seconds] = connect('gamegate.v1.DawankaService/GetDawankaInfo',
                ['appId' => OA_APP, 'user' => OA_SUPER], ['Connect-Timeout-Ms: 500']);
        } finally {
            admin('DELETE', '/_sandbox/faults');
        }
        check('Connect-Timeout-Ms 500 on a 3 s upstream: HTTP 504 deadline_exceeded within 1.5 s',
            $status === 504 && ($error['code'] ?? null) === 'deadline_exceeded' && $seconds < 1.5,
            sprintf('HTTP %d %s after %.3f s', $status, json_encode($error), $seconds));
    },
];

admin('DELETE', '/_sandbox/faults');
foreach ($steps as $name => $step) {
    try {
        $step();
    } catch (Throwable $e) {
        $failures[] = $name;
        echo "  FAIL $name: " . $e->getMessage() . "\n";
    }
}
printf("php %s: %d checks passed, %d failed\n", PHP_VERSION, $passes, count($failures));
exit($failures ? 1 : 0);
