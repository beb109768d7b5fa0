"""gamegate over mTLS from Python: grpcio's ssl_channel_credentials, as a game server would use it.

Usage: tls_client.py GRPC_ADDR CA_PEM CLIENT_CERT_PEM CLIENT_KEY_PEM   (stubs on PYTHONPATH)

With the client certificate: the health check and one RPC succeed. Without one: the call fails
(UNAVAILABLE: the server refuses the handshake). Exits 1 on any mismatch.
"""

import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gamegate.v1 import dawanka_pb2, dawanka_pb2_grpc

# Demo fixture (crates/sandbox/README.md): the super dawanka user of the OpenAPI app.
OA_APP = "1110766236"
OA_SUPER = ("AB055EE03EE6F7CCB31F6CCE75A50A38", "CC11B9096D458AEFDEF72981AE5A136D")
TIMEOUT = 10.0


def read(path):
    with open(path, "rb") as f:
        return f.read()


def channel(addr, credentials):
    # The server certificate names localhost; the address is 127.0.0.1:port.
    return grpc.secure_channel(addr, credentials, options=[("grpc.ssl_target_name_override", "localhost")])


def main():
    addr, ca, cert, key = sys.argv[1:5]
    failures = []

    with channel(addr, grpc.ssl_channel_credentials(
            root_certificates=read(ca), private_key=read(key), certificate_chain=read(cert))) as mtls:
        health = health_pb2_grpc.HealthStub(mtls).Check(health_pb2.HealthCheckRequest(service=""), timeout=TIMEOUT)
        ok = health.status == health_pb2.HealthCheckResponse.SERVING
        print(f"{'ok ' if ok else 'FAIL'} health over mTLS: {health_pb2.HealthCheckResponse.ServingStatus.Name(health.status)}")
        if not ok:
            failures.append("health")
        info = dawanka_pb2_grpc.DawankaServiceStub(mtls).GetDawankaInfo(dawanka_pb2.GetDawankaInfoRequest(
            app_id=OA_APP, user=dawanka_pb2.QqGameUser(openid=OA_SUPER[0], openkey=OA_SUPER[1]),
            version=dawanka_pb2.DAWANKA_DATA_VERSION_V2), timeout=TIMEOUT)
        ok = info.level == dawanka_pb2.DAWANKA_LEVEL_SUPER
        print(f"{'ok ' if ok else 'FAIL'} DawankaService.GetDawankaInfo over mTLS: level "
              f"{dawanka_pb2.DawankaLevel.Name(info.level)}")
        if not ok:
            failures.append("rpc")

    with channel(addr, grpc.ssl_channel_credentials(root_certificates=read(ca))) as anonymous:
        try:
            health_pb2_grpc.HealthStub(anonymous).Check(health_pb2.HealthCheckRequest(service=""), timeout=TIMEOUT)
            print("FAIL a client without a certificate was served")
            failures.append("no client certificate")
        except grpc.RpcError as e:
            ok = e.code() == grpc.StatusCode.UNAVAILABLE
            print(f"{'ok ' if ok else 'FAIL'} without a client certificate: {e.code().name}")
            if not ok:
                failures.append("no client certificate")

    print(f"python over tls: {2 + 1 - len(failures)} passed, {len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
