"""The API's routes, declared once: the aiohttp router and the OpenAPI
document are both made from ``ROUTES``."""

from __future__ import annotations

from dataclasses import dataclass, field

from console.api import handlers, migrations, stream

PREFIX = "/api/v1"


@dataclass(frozen=True)
class Param:
    name: str
    where: str          # "path" | "query"
    schema: dict
    doc: str
    required: bool = False


@dataclass(frozen=True)
class Route:
    method: str
    path: str           # below PREFIX unless absolute ("/metrics")
    handler: object
    summary: str
    params: tuple[Param, ...] = ()
    body: str | None = None                      # a components/schemas name
    responses: dict[str, str] = field(default_factory=dict)  # status -> description
    produces: str = "application/json"
    mutates: bool = False

    @property
    def full_path(self) -> str:
        return self.path if self.path.startswith("/metrics") else PREFIX + self.path


_TASK = Param("name", "path", {"type": "string"}, "the task's name ([tasks.NAME], or monitor:CLUSTER)",
              required=True)
_CLUSTER = Param("cluster", "path", {"type": "string"}, "the cluster's name", required=True)
_ERR = {"400": "bad input (one line in `error`)", "404": "no such cluster, host or task"}

ROUTES: tuple[Route, ...] = (
    Route("GET", "", handlers.index, "the engine: version, state directory, config, pid, counts"),
    Route("GET", "/openapi.json", handlers.openapi, "this document"),
    Route("GET", "/metrics", handlers.metrics, "Prometheus metrics (docs/api.md, Metrics); on TCP "
          "behind the token, like every path", produces="text/plain; version=0.0.4"),
    Route("GET", "/clusters", handlers.clusters, "every cluster's last topology snapshot"),
    Route("GET", "/clusters/{cluster}", handlers.cluster, "one cluster's last topology snapshot",
          (_CLUSTER,), responses=_ERR),
    Route("GET", "/clusters/{cluster}/hosts/{host}", handlers.host, "one host of a cluster",
          (_CLUSTER, Param("host", "path", {"type": "string"}, "the host's name or address",
                           required=True)), responses=_ERR),
    Route("GET", "/clusters/{cluster}/hosts/{host}/{what}", handlers.host_report,
          "a host's drill-down: processlist | locks (metadata-lock waits: who blocks whom) | "
          "replication (full replica status) | variables (those that differ from the other "
          "hosts) | status (QPS/threads counters, InnoDB summary) | explain (?session=ID)",
          (_CLUSTER, Param("host", "path", {"type": "string"}, "the host's name or HOST:PORT",
                           required=True),
           Param("what", "path", {"enum": ["processlist", "locks", "replication", "variables",
                                           "status", "explain"]}, "which part", required=True),
           Param("session", "query", {"type": "integer"}, "explain: the session id")),
          responses=_ERR),
    Route("POST", "/clusters/{cluster}/hosts/{host}/kill", handlers.host_kill,
          "KILL a session (or only its query): body {session, query_only, confirm}; confirm is "
          "the session id typed", (_CLUSTER, Param("host", "path", {"type": "string"},
                                                   "the host's name or HOST:PORT", required=True)),
          body="KillSession", responses={**_ERR, "409": "confirm missing or wrong"}, mutates=True),
    Route("GET", "/clusters/{cluster}/recoveries", handlers.recoveries,
          "every past recovery of the cluster (switchover, failover, reattach), oldest first: id, "
          "kind, start, duration, outcome (`running` while one runs: its journal is written after "
          "every step), who acknowledged it, and its steps", (_CLUSTER,), responses=_ERR),
    Route("POST", "/clusters/{cluster}/recoveries/acknowledge", handlers.acknowledge,
          "acknowledge the cluster's recoveries (lifts the anti-flapping block): body {confirm}, "
          "the cluster's name typed", (_CLUSTER,), body="Acknowledge",
          responses={**_ERR, "409": "confirm missing or wrong"}, mutates=True),
    Route("GET", "/tasks", handlers.tasks, "every task: running, ended, or declared and not started",
          (Param("monitors", "query", {"type": "boolean"}, "include the clusters' monitors"),)),
    Route("GET", "/tasks/{name}", handlers.task, "one task's status and its commands", (_TASK,),
          responses=_ERR),
    Route("PUT", "/tasks/{name}", handlers.declare, "declare (or replace) a task in the config "
          "file, validated by the registry; the engine reloads", (_TASK,), body="TaskDeclaration",
          responses={"400": "refused by the config check (`problems`); nothing written"},
          mutates=True),
    Route("DELETE", "/tasks/{name}", handlers.undeclare, "remove a task from the config file; "
          "the engine stops it (it checkpoints first)", (_TASK,), responses=_ERR, mutates=True),
    Route("POST", "/tasks/{name}/start", handlers.start, "start a declared task (built again "
          "when it ended)", (_TASK,), responses={**_ERR, "409": "it already runs"}, mutates=True),
    Route("POST", "/tasks/{name}/pause", handlers.simple("pause"), "pause a running task", (_TASK,),
          responses=_ERR, mutates=True),
    Route("POST", "/tasks/{name}/resume", handlers.simple("resume"), "resume a paused task",
          (_TASK,), responses=_ERR, mutates=True),
    Route("POST", "/tasks/{name}/stop", handlers.simple("stop"), "stop a task (it checkpoints "
          "first)", (_TASK,), responses=_ERR, mutates=True),
    Route("GET", "/tasks/{name}/commands", handlers.commands, "the task's commands: name, "
          "dangerous or not, one line of help", (_TASK,), responses=_ERR),
    Route("POST", "/tasks/{name}/commands/{command}", handlers.run_command,
          "run a task command; a dangerous one needs `confirm` equal to its confirm target",
          (_TASK, Param("command", "path", {"type": "string"}, "the command", required=True)),
          body="CommandCall",
          responses={**_ERR, "409": "dangerous: confirm target missing or wrong (`confirm` says "
                                    "what to type)"}, mutates=True),
    Route("POST", "/migrations", migrations.hand_over, "hand a `migrate --execute` run to the "
          "engine: inspected as the CLI does (a refusal creates nothing), then one of its tasks "
          "(`migrate-DB.TABLE`); unix socket only (the body carries the password)",
          body="MigrationHandOver",
          responses={"201": "started: {seq (the feed's number before it), task}",
                     "400": "bad input or refused by the inspection (one line in `error`)",
                     "403": "not on the unix socket", "409": "the engine already runs it"},
          mutates=True),
    Route("GET", "/audit", stream.audit, "the audit log (newest last); with follow=true a "
          "text/event-stream of `audit` events after the last `limit` entries",
          (Param("limit", "query", {"type": "integer", "minimum": 1}, "at most this many (200)"),
           Param("follow", "query", {"type": "boolean"}, "keep the stream open")),
          produces="application/json or text/event-stream"),
    Route("GET", "/stream", stream.snapshots_stream, "live snapshots as server-sent events: `snapshot` "
          "({clusters, tasks}) every interval, `audit` and `event` entries as they happen",
          (Param("interval", "query", {"type": "number", "minimum": 0.2},
                 "seconds between snapshots (the config's refresh interval)"),
           Param("since", "query", {"type": "integer", "minimum": 0},
                 "first send the engine's feed entries after this sequence number (0: every one "
                 "kept, the last 2000); default: only new ones"),
           Param("monitors", "query", {"type": "boolean"},
                 "include the clusters' monitors in the snapshots' tasks")),
          produces="text/event-stream"),
)
