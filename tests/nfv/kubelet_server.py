#!/usr/bin/python3
"""A stand-in kubelet PodResources server: real gRPC (grpcio, Debian's python3-grpcio) on a
unix socket, serving v1.PodResourcesLister List and Get from a JSON description of the pods.

Usage: kubelet_server.py SOCKET CONFIG_JSON CALL_LOG

CONFIG_JSON:
  {"pods": [{"namespace": "ns", "name": "pod", "containers": [
      {"name": "c1", "devices": [{"resourceName": "r", "deviceIds": ["a"], "numa": [0]}]}]}],
   "get": "serve" | "unimplemented" | "disabled",   (default "serve")
   "delaySeconds": 0,                                  (sleep before answering)
   "listError": null | {"code": "UNAVAILABLE", "message": "..."}}

Every call is appended to CALL_LOG as one JSON line {"method", "podName", "podNamespace"}.
The protobuf messages are encoded by hand (no generated code, no protoc).
Prints "ready" on stdout once serving.
"""

import json
import sys
import time
from concurrent import futures

import grpc


def varint(n):
    out = bytearray()
    n &= (1 << 64) - 1  # int64: negative numbers take ten bytes
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_bytes(number, data):
    return varint(number << 3 | 2) + varint(len(data)) + data


def field_string(number, text):
    return field_bytes(number, text.encode())


def field_int(number, value):
    return varint(number << 3) + varint(value)


def encode_devices(d):
    out = field_string(1, d["resourceName"])
    for i in d.get("deviceIds", []):
        out += field_string(2, i)
    if d.get("numa") is not None:
        nodes = b"".join(field_bytes(1, field_int(1, n)) for n in d["numa"])
        out += field_bytes(3, nodes)
    return out


def encode_container(c):
    out = field_string(1, c["name"])
    for d in c.get("devices", []):
        out += field_bytes(2, encode_devices(d))
    # cpu_ids (packed int64, field 3): present so the client must skip it
    if c.get("cpuIds"):
        out += field_bytes(3, b"".join(varint(x) for x in c["cpuIds"]))
    return out


def encode_pod(p):
    out = field_string(1, p["name"]) + field_string(2, p["namespace"])
    for c in p.get("containers", []):
        out += field_bytes(3, encode_container(c))
    return out


def read_varint(data, pos):
    result = shift = 0
    while True:
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return result, pos


def decode_get_request(data):
    fields = {}
    pos = 0
    while pos < len(data):
        key, pos = read_varint(data, pos)
        if key & 7 != 2:
            raise ValueError("unexpected wire type")
        length, pos = read_varint(data, pos)
        fields[key >> 3] = data[pos:pos + length].decode()
        pos += length
    return fields.get(1, ""), fields.get(2, "")


def main():
    socket_path, config_path, log_path = sys.argv[1:4]
    with open(config_path) as f:
        config = json.load(f)

    def log_call(method, name="", namespace=""):
        with open(log_path, "a") as f:
            f.write(json.dumps({"method": method, "podName": name, "podNamespace": namespace}) + "\n")

    def delay():
        if config.get("delaySeconds"):
            time.sleep(config["delaySeconds"])

    def list_handler(request, context):
        log_call("List")
        delay()
        err = config.get("listError")
        if err:
            context.abort(getattr(grpc.StatusCode, err["code"]), err["message"])
        return b"".join(field_bytes(1, encode_pod(p)) for p in config.get("pods", []))

    def get_handler(request, context):
        name, namespace = decode_get_request(request)
        log_call("Get", name, namespace)
        delay()
        if config.get("get") == "disabled":
            context.abort(grpc.StatusCode.UNKNOWN, "PodResources API Get method disabled")
        for p in config.get("pods", []):
            if p["name"] == name and p["namespace"] == namespace:
                return field_bytes(1, encode_pod(p))
        context.abort(grpc.StatusCode.UNKNOWN,
                      "pod %s in namespace %s not found" % (name, namespace))

    identity = lambda b: b  # noqa: E731  (messages are bytes both ways)
    methods = {
        "/v1.PodResourcesLister/List": grpc.unary_unary_rpc_method_handler(
            list_handler, request_deserializer=identity, response_serializer=identity),
    }
    if config.get("get", "serve") != "unimplemented":
        methods["/v1.PodResourcesLister/Get"] = grpc.unary_unary_rpc_method_handler(
            get_handler, request_deserializer=identity, response_serializer=identity)

    class Handler(grpc.GenericRpcHandler):
        def service(self, details):
            return methods.get(details.method)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), handlers=[Handler()])
    server.add_insecure_port("unix:" + socket_path)
    server.start()
    print("ready", flush=True)
    try:
        server.wait_for_termination()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
