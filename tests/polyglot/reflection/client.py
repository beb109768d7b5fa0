"""gamegate through server reflection only, as grpcurl does: no stub generated from proto/.

Usage: client.py GRPC_ADDR

Uses grpcio, grpcio-reflection's v1alpha messages (and the same messages renamed to
grpc.reflection.v1, which has the same wire format) and a protobuf DescriptorPool built from
what the server sends. Lists services over v1 and v1alpha, describes a method, its messages,
imported google.protobuf / google.rpc types and a custom option, invokes RPCs from JSON
(json_format.Parse into dynamic message classes) and decodes the error details with the
google.rpc types the server described. Exits 1 on any mismatch.
"""

import sys

import grpc
from google.protobuf import descriptor, descriptor_pb2, descriptor_pool, json_format, message_factory, text_format
from grpc_reflection.v1alpha import reflection_pb2 as v1alpha_pb2

SERVICES = [
    "gamegate.v1.StorageService",
    "gamegate.v1.DawankaService",
    "gamegate.v1.AuthService",
    "gamegate.v1.RelationService",
    "gamegate.v1.ProfileService",
    "gamegate.v1.ShareService",
    "gamegate.v1.FreeFlowService",
]
TIMEOUT = 10.0
# The README's grpcurl examples.
DAWANKA_JSON = ('{"app_id":"1110766236","user":{"openid":"AB055EE03EE6F7CCB31F6CCE75A50A38",'
                '"openkey":"CC11B9096D458AEFDEF72981AE5A136D"},"version":"DAWANKA_DATA_VERSION_V2"}')
STORAGE_JSON = ('{"app_id":"1112345678","user":{"openid":"A0B1C2D3E4F5061728394A5B6C7D8E9F",'
                '"session_key":"HyVFkGl5F5OQWJZZaNzBBg=="},"kv_list":[{"key":"%s","value":"100"}]}')

failures = []
passes = 0


def check(name, condition, detail=""):
    global passes
    if condition:
        passes += 1
        print(f"  ok   {name}")
    else:
        failures.append(name)
        print(f"  FAIL {name}: {detail}")


def reflection_classes(version):
    """(request class, response class) of grpc.reflection.<version>."""
    if version == "v1alpha":
        return v1alpha_pb2.ServerReflectionRequest, v1alpha_pb2.ServerReflectionResponse
    # grpc.reflection.v1 is v1alpha under another package name: same messages, same numbers.
    file = descriptor_pb2.FileDescriptorProto()
    v1alpha_pb2.DESCRIPTOR.CopyToProto(file)
    file.name = "grpc/reflection/v1/reflection.proto"
    file.package = "grpc.reflection.v1"

    def rename(type_name):
        return type_name.replace(".grpc.reflection.v1alpha.", ".grpc.reflection.v1.")

    for message in file.message_type:
        for field in message.field:
            if field.HasField("type_name"):
                field.type_name = rename(field.type_name)
    for service in file.service:
        for method in service.method:
            method.input_type, method.output_type = rename(method.input_type), rename(method.output_type)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return (message_factory.GetMessageClass(pool.FindMessageTypeByName("grpc.reflection.v1.ServerReflectionRequest")),
            message_factory.GetMessageClass(pool.FindMessageTypeByName("grpc.reflection.v1.ServerReflectionResponse")))


class Reflection:
    def __init__(self, channel, version):
        self.version = version
        request, response = reflection_classes(version)
        self.request = request
        self.call = channel.stream_stream(
            f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
            request_serializer=request.SerializeToString,
            response_deserializer=response.FromString,
        )

    def ask(self, **kwargs):
        answers = list(self.call(iter([self.request(**kwargs)]), timeout=TIMEOUT))
        if len(answers) != 1:
            raise RuntimeError(f"{len(answers)} answers to one reflection request")
        answer = answers[0]
        if answer.HasField("error_response"):
            raise RuntimeError(f"reflection error {answer.error_response.error_code}: "
                               f"{answer.error_response.error_message}")
        return answer

    def services(self):
        return sorted(s.name for s in self.ask(list_services="").list_services_response.service)

    def files_for(self, symbols):
        """Every FileDescriptorProto needed for the symbols (their files and all imports)."""
        files = {}
        pending = []

        def take(answer):
            for raw in answer.file_descriptor_response.file_descriptor_proto:
                file = descriptor_pb2.FileDescriptorProto.FromString(raw)
                if file.name not in files:
                    files[file.name] = file
                    pending.extend(file.dependency)

        for symbol in symbols:
            take(self.ask(file_containing_symbol=symbol))
        while pending:
            name = pending.pop()
            if name not in files:
                take(self.ask(file_by_filename=name))
        return files


def build_pool(files):
    pool = descriptor_pool.DescriptorPool()
    added = set()

    def add(name):
        if name in added:
            return
        for dependency in files[name].dependency:
            add(dependency)
        pool.Add(files[name])
        added.add(name)

    for name in sorted(files):
        add(name)
    return pool


def is_repeated(field):
    # protobuf >= 7 has only is_repeated; older ones only label.
    if hasattr(field, "is_repeated"):
        return field.is_repeated
    return field.label == descriptor.FieldDescriptor.LABEL_REPEATED


def type_name(field):
    if field.message_type is not None:
        return "." + field.message_type.full_name
    if field.enum_type is not None:
        return "." + field.enum_type.full_name
    names = {v: k[5:].lower() for k, v in vars(descriptor.FieldDescriptor).items() if k.startswith("TYPE_")}
    return names[field.type]


def describe_message(message):
    lines = [f"message {message.name} {{  // {message.full_name} in {message.file.name}"]
    for field in message.fields:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key, value = field.message_type.fields_by_name["key"], field.message_type.fields_by_name["value"]
            lines.append(f"  map<{type_name(key)}, {type_name(value)}> {field.name} = {field.number};")
        else:
            label = "repeated " if is_repeated(field) else ""
            lines.append(f"  {label}{type_name(field)} {field.name} = {field.number};")
    lines.append("}")
    return "\n".join(lines)


def main():
    addr = sys.argv[1]
    channel = grpc.insecure_channel(addr)
    grpc.channel_ready_future(channel).result(timeout=TIMEOUT)

    # --- list, over both reflection versions ---
    listed = {}
    for version in ("v1", "v1alpha"):
        try:
            listed[version] = Reflection(channel, version).services()
        except Exception as e:  # noqa: BLE001
            listed[version] = None
            check(f"reflection {version} lists services", False, f"{type(e).__name__}: {e}")
            continue
        print(f"  {version} services: {', '.join(listed[version])}")
        expected = set(SERVICES) | {"grpc.health.v1.Health"}
        check(f"reflection {version} lists the 7 gamegate services and health",
              expected <= set(listed[version]), str(listed[version]))
        check(f"reflection {version} lists itself", f"grpc.reflection.{version}.ServerReflection" in listed[version],
              str(listed[version]))

    def others(names):
        return [name for name in names or [] if not name.startswith("grpc.reflection.")]

    check("v1 and v1alpha list the same other services",
          listed.get("v1") is not None and others(listed.get("v1")) == others(listed.get("v1alpha")), str(listed))

    # --- describe, from descriptors fetched over v1 ---
    reflection = Reflection(channel, "v1")
    files = reflection.files_for(SERVICES + ["google.rpc.Status", "google.rpc.ErrorInfo"])
    print(f"  files: {', '.join(sorted(files))}")
    for needed in ("gamegate/v1/options.proto", "google/protobuf/descriptor.proto",
                   "google/protobuf/timestamp.proto", "google/rpc/status.proto", "google/rpc/error_details.proto",
                   "google/protobuf/any.proto", "google/protobuf/duration.proto"):
        check(f"reflection serves {needed}", needed in files, str(sorted(files)))
    pool = build_pool(files)

    service = pool.FindServiceByName("gamegate.v1.DawankaService")
    method = service.methods_by_name["GetDawankaInfo"]
    print(f"  rpc {method.name} ( .{method.input_type.full_name} ) returns ( .{method.output_type.full_name} );")
    for message in (method.input_type, method.output_type):
        print("    " + describe_message(message).replace("\n", "\n    "))
    check("GetDawankaInfo takes GetDawankaInfoRequest, returns GetDawankaInfoResponse",
          (method.input_type.full_name, method.output_type.full_name)
          == ("gamegate.v1.GetDawankaInfoRequest", "gamegate.v1.GetDawankaInfoResponse"))
    expire = method.output_type.fields_by_name["card_expire_time"].message_type
    check("card_expire_time is google.protobuf.Timestamp (seconds, nanos) from its own file",
          expire.full_name == "google.protobuf.Timestamp" and expire.file.name == "google/protobuf/timestamp.proto"
          and [f.name for f in expire.fields] == ["seconds", "nanos"], expire.full_name)
    user = method.input_type.fields_by_name["user"].message_type
    check("user is gamegate.v1.QqGameUser (openid, openkey, pf, userip)",
          [f.name for f in user.fields] == ["openid", "openkey", "pf", "userip"], describe_message(user))

    # The custom option of the method, read through the server's own descriptor.proto.
    method_options_class = message_factory.GetMessageClass(pool.FindMessageTypeByName("google.protobuf.MethodOptions"))
    route_extension = pool.FindExtensionByName("gamegate.v1.route")
    raw_file = files[service.file.name]
    raw_method = next(m for s in raw_file.service if s.name == service.name for m in s.method if m.name == method.name)
    options = method_options_class.FromString(raw_method.options.SerializeToString())
    route = options.Extensions[route_extension]
    print("    option (gamegate.v1.route) = { " + text_format.MessageToString(route, as_one_line=True) + " }")
    check("custom option (gamegate.v1.route) of GetDawankaInfo decodes",
          route.path == "/v3/user/get_dawanka_info" and route.idempotent, text_format.MessageToString(route))

    for name in ("google.protobuf.Timestamp", "google.rpc.Status", "google.rpc.ErrorInfo", "google.rpc.BadRequest",
                 "google.rpc.RetryInfo"):
        message = pool.FindMessageTypeByName(name)
        print("    " + describe_message(message).replace("\n", "\n    "))
    info = pool.FindMessageTypeByName("google.rpc.ErrorInfo")
    check("google.rpc.ErrorInfo has reason, domain, map<string, string> metadata",
          [f.name for f in info.fields] == ["reason", "domain", "metadata"]
          and info.fields_by_name["metadata"].message_type.GetOptions().map_entry, describe_message(info))
    retry = pool.FindMessageTypeByName("google.rpc.RetryInfo")
    check("google.rpc.RetryInfo.retry_delay is google.protobuf.Duration",
          retry.fields_by_name["retry_delay"].message_type.full_name == "google.protobuf.Duration")
    violation = pool.FindMessageTypeByName("google.rpc.BadRequest.FieldViolation")
    check("google.rpc.BadRequest.FieldViolation has field and description",
          {"field", "description"} <= set(violation.fields_by_name))

    # --- invoke from JSON with dynamic messages ---
    def invoke(method, request_json):
        request_class = message_factory.GetMessageClass(method.input_type)
        response_class = message_factory.GetMessageClass(method.output_type)
        request = json_format.Parse(request_json, request_class())
        call = channel.unary_unary(f"/{method.containing_service.full_name}/{method.name}",
                                   request_serializer=request_class.SerializeToString,
                                   response_deserializer=response_class.FromString)
        return call(request, timeout=TIMEOUT)

    try:
        answer = json_format.MessageToDict(invoke(method, DAWANKA_JSON))
        print(f"  GetDawankaInfo -> {answer}")
        check("GetDawankaInfo from JSON answers the super dawanka",
              answer.get("score") == "3200" and answer.get("level") == "DAWANKA_LEVEL_SUPER"
              and answer.get("discountPercent") == 20 and answer.get("payReturnCount") == 3, str(answer))
    except Exception as e:  # noqa: BLE001
        check("GetDawankaInfo from JSON answers the super dawanka", False, f"{type(e).__name__}: {e}")

    set_storage = pool.FindServiceByName("gamegate.v1.StorageService").methods_by_name["SetUserStorage"]
    try:
        invoke(set_storage, STORAGE_JSON % "score")
        check("SetUserStorage from JSON succeeds", True)
    except Exception as e:  # noqa: BLE001
        check("SetUserStorage from JSON succeeds", False, f"{type(e).__name__}: {e}")

    # --- decode error details with the described google.rpc types ---
    try:
        invoke(set_storage, STORAGE_JSON % ("k" * 129))
        check("a 129-byte key from JSON is INVALID_ARGUMENT", False, "the call succeeded")
    except grpc.RpcError as error:
        check("a 129-byte key from JSON is INVALID_ARGUMENT", error.code() == grpc.StatusCode.INVALID_ARGUMENT,
              str(error.code()))
        raw = dict(error.trailing_metadata() or ()).get("grpc-status-details-bin")
        check("the grpc-status-details-bin trailer is there", raw is not None)
        status_class = message_factory.GetMessageClass(pool.FindMessageTypeByName("google.rpc.Status"))
        status = status_class.FromString(raw or b"")
        details = {}
        for detail in status.details:
            name = detail.type_url.rsplit("/", 1)[-1]
            details[name] = message_factory.GetMessageClass(pool.FindMessageTypeByName(name)).FromString(detail.value)
        print(f"  google.rpc.Status code={status.code} message={status.message!r}")
        for name, value in details.items():
            print(f"    {name}: {json_format.MessageToJson(value, indent=None)}")
        check("google.rpc.Status code is INVALID_ARGUMENT (3)", status.code == 3, str(status.code))
        info = details.get("google.rpc.ErrorInfo")
        check("ErrorInfo reason KEY_TOO_LONG, domain gamegate",
              info is not None and info.reason == "KEY_TOO_LONG" and info.domain == "gamegate", str(info))
        bad = details.get("google.rpc.BadRequest")
        fields = [v.field for v in bad.field_violations] if bad is not None else None
        check("BadRequest field kv_list[0].key", fields == ["kv_list[0].key"], str(fields))

    channel.close()
    print(f"reflection: {passes} checks passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
