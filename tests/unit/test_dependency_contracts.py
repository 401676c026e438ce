"""Contract tests: each place where we rely on more than a dependency's public
API.  pyproject.toml bounds these dependencies from above; when a new release
is allowed, these tests say at once which touch point moved (the integration
tests then show whether the behaviour still holds)."""

import inspect

import pymysql.connections as pc
from pymysqlreplication import BinLogStreamReader


def _source(obj) -> str:
    return inspect.getsource(obj)


def test_pymysql_connection_internals_used_by_the_raw_binlog_client():
    # console/mysql/binlog/client.py sends COM_REGISTER_SLAVE / COM_BINLOG_DUMP
    # with _execute_command, reads the OK with _read_packet, then reads the
    # dump stream from _sock itself and closes with _force_close
    params = inspect.signature(pc.Connection._execute_command).parameters
    assert list(params)[:3] == ["self", "command", "sql"]
    assert "packet_type" in inspect.signature(pc.Connection._read_packet).parameters
    assert callable(pc.Connection._force_close)
    assert "self._sock = sock" in _source(pc.Connection.connect)


def test_pymysql_internals_used_by_the_big_packet_replay():
    # console/engine/replay/replayer.py writes pre-framed COM_QUERY packets to
    # _sock, then reads each reply with MySQLResult after setting the
    # sequence number it expects (_next_seq_id); _result is cleared after
    src = _source(pc.Connection)
    assert "self._next_seq_id" in src
    assert "self._result" in src
    assert "packet_number != self._next_seq_id" in _source(pc.Connection._read_packet)
    assert list(inspect.signature(pc.MySQLResult.__init__).parameters) == ["self", "connection"]
    assert callable(pc.MySQLResult.read)


def test_pymysql_internals_used_by_the_binlog_table_filter():
    # console/engine/migration/binlog_filter.py overrides _write_bytes (to see
    # the dump command go out) and _read_packet (to drop other tables' row
    # events before python-mysql-replication decodes them), reading _data
    assert list(inspect.signature(pc.Connection._write_bytes).parameters) == ["self", "data"]
    assert "self._data" in _source(pc.MysqlPacket.__init__)


def test_pymysql_tls_context_hook():
    # console/mysql/connection.py shares one TLS context through _create_ssl_ctx
    assert list(inspect.signature(pc.Connection._create_ssl_ctx).parameters) == ["self", "sslp"]
    assert "self._create_ssl_ctx(" in _source(pc.Connection.__init__)


def test_python_mysql_replication_takes_our_connection_class():
    # console/engine/migration/apply.py passes the filtering connection class
    # as pymysql_wrapper, and positions by file/pos or by GTID
    params = inspect.signature(BinLogStreamReader.__init__).parameters
    for name in ("pymysql_wrapper", "resume_stream", "is_mariadb", "auto_position",
                 "only_schemas", "only_tables", "only_events", "enable_logging", "slave_heartbeat"):
        assert name in params, name
    assert "self.pymysql_wrapper(" in _source(BinLogStreamReader)


def test_versions_inside_the_declared_bounds():
    from importlib.metadata import version

    def parts(name):
        return tuple(int(x) for x in version(name).split(".")[:2])

    assert (1, 1) <= parts("pymysql") < (1, 3)
    assert (1, 0) <= parts("mysql-replication") < (1, 1)


def test_textual_serve_internals_used_by_the_browser_console():
    # console/api/web_console.py subclasses textual-serve's Server (its
    # _make_app routes by name, handle_index's template, handle_websocket's
    # _process_messages) and AppService (_open_app_process replaced: argv, no
    # shell; _build_environment, _process, _stdin, run, stop, remote_close)
    from importlib.metadata import version

    from textual_serve.app_service import AppService
    from textual_serve.server import Server, to_int

    assert (1, 1) <= tuple(int(x) for x in version("textual-serve").split(".")[:2]) < (2, 0)
    src = _source(Server._make_app)
    for route in ('name="index"', 'name="websocket"', 'name="static"'):
        assert route in src
    assert '"app_index.html"' in _source(Server)
    assert list(inspect.signature(Server._process_messages).parameters) == \
        ["self", "websocket", "app_service"]
    assert to_int("x", 7) == 7
    opener = _source(AppService._open_app_process)
    assert "self._process = " in opener and "self._stdin = " in opener
    assert "width" in inspect.signature(AppService._build_environment).parameters
    init = _source(AppService.__init__)
    assert "self.remote_close = close" in init and "self._process" in init
    assert callable(AppService.run) and callable(AppService.stop)


def test_boto3_knows_the_conditional_writes_of_the_s3_lease():
    # console/engine/backup/s3.py takes its writer lease with PutObject
    # If-None-Match: * and renews it with If-Match (botocore >= 1.35.70 models
    # both; older clients refuse the parameters), and reads errors from the
    # public ClientError.response dict
    import boto3
    import botocore.exceptions

    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="a",
                          aws_secret_access_key="b")
    members = client.meta.service_model.operation_model("PutObject").input_shape.members
    assert "IfNoneMatch" in members and "IfMatch" in members
    e = botocore.exceptions.ClientError({"Error": {"Code": "PreconditionFailed"},
                                         "ResponseMetadata": {"HTTPStatusCode": 412}}, "PutObject")
    assert e.response["Error"]["Code"] == "PreconditionFailed"


def test_cryptography_aead_and_hkdf_used_by_backup_encryption():
    # console/engine/backup/crypto.py: AES-256-GCM with 12-byte nonces and
    # associated data, HKDF-SHA256 (public API; the vectors pin the behaviour)
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    k = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"s", info=b"i").derive(b"\0" * 32)
    ct = AESGCM(k).encrypt(b"\0" * 12, b"x", b"aad")
    assert len(ct) == 1 + 16 and AESGCM(k).decrypt(b"\0" * 12, ct, b"aad") == b"x"
