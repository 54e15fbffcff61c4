"""In-process fakes of Google Cloud gRPC services, for the real client libraries to talk to."""

from __future__ import annotations

from collections.abc import Callable
from concurrent import futures
from typing import Any

import grpc

# A handler gets the decoded request and the gRPC context, and returns the response.
Handler = Callable[[Any, grpc.ServicerContext], Any]


class GrpcFake:
    """A gRPC server on 127.0.0.1 (free port) serving one service from plain functions.

    `methods` maps a method name ("Encrypt") to (handler, request type,
    response type); the types are proto-plus classes from the client library,
    so requests and responses cross the wire exactly as with the real service.
    """

    def __init__(self, service: str, methods: dict[str, tuple[Handler, Any, Any]]) -> None:
        handlers = {
            name: grpc.unary_unary_rpc_method_handler(
                handler,
                request_deserializer=request_type.deserialize,
                response_serializer=response_type.serialize,
            )
            for name, (handler, request_type, response_type) in methods.items()
        }
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(service, handlers),)
        )
        port = self.server.add_insecure_port("127.0.0.1:0")
        self.address = f"127.0.0.1:{port}"
        self.server.start()

    def channel(self) -> grpc.Channel:
        return grpc.insecure_channel(self.address)

    def stop(self) -> None:
        self.server.stop(grace=None)
