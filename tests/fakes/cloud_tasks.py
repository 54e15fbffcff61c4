"""A fake Cloud Tasks (gRPC CloudTasks.CreateTask) that keeps tasks and refuses duplicate names."""

from __future__ import annotations

import threading

import grpc
from google.cloud import tasks_v2
from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

from tests.fakes import GrpcFake


class FakeCloudTasks:
    """Records every created task by name, as Cloud Tasks does (ALREADY_EXISTS on reuse)."""

    def __init__(self) -> None:
        self.tasks: dict[str, tasks_v2.Task] = {}
        self.parents: list[str] = []
        self.fail_next: list[grpc.StatusCode] = []
        self._lock = threading.Lock()
        self._grpc = GrpcFake(
            "google.cloud.tasks.v2.CloudTasks",
            {"CreateTask": (self._create, tasks_v2.CreateTaskRequest, tasks_v2.Task)},
        )

    def client(self) -> tasks_v2.CloudTasksClient:
        """The real Cloud Tasks client library, speaking gRPC to this fake."""
        return tasks_v2.CloudTasksClient(
            transport=CloudTasksGrpcTransport(channel=self._grpc.channel())
        )

    def stop(self) -> None:
        self._grpc.stop()

    def _create(
        self, request: tasks_v2.CreateTaskRequest, context: grpc.ServicerContext
    ) -> tasks_v2.Task:
        with self._lock:
            if self.fail_next:
                context.abort(self.fail_next.pop(0), "injected failure")
            name = request.task.name
            if not name.startswith(request.parent + "/tasks/"):
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "task name outside its queue")
            if name in self.tasks:
                context.abort(grpc.StatusCode.ALREADY_EXISTS, "Requested entity already exists")
            self.parents.append(request.parent)
            self.tasks[name] = request.task
            return request.task
