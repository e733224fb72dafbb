"""The shared protocol test vectors and the JSON Schemas, against the real binary.

tests/vectors.rs runs the same vector files (protocol/vectors/*.json) from Rust;
this file runs them from pyzmq and also validates every reply, and published
snapshots, against protocol/*.schema.json. The vector format is described in
protocol/vectors/README.md.
"""

import copy
import json
import re
import shutil

import jsonschema
import msgpack
import pytest
import zmq

from conftest import REPO, eventually

PROTOCOL = REPO / "protocol"
VECTORS = PROTOCOL / "vectors"
VECTOR_FILES = sorted(p.name for p in VECTORS.glob("*.json"))
SENTINEL_ID = 3141592653
REPLY_KEYS = ["msg_type", "msg_val", "id", "timestamp", "params"]
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}$", re.ASCII)
TYPES = {"int": int, "float": float, "str": str, "bool": bool, "list": list, "object": dict,
         "null": type(None)}


def schema(name):
    return json.loads((PROTOCOL / f"{name}.schema.json").read_text())


def validator(name):
    return jsonschema.Draft202012Validator(schema(name))


def load(file):
    return json.loads((VECTORS / file).read_text())


def substitute(value, variables):
    if isinstance(value, str):
        for name, replacement in variables.items():
            value = value.replace("{" + name + "}", replacement)
        return value
    if isinstance(value, list):
        return [substitute(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, variables) for k, v in value.items()}
    return value


def frame(spec):
    assert len(spec) == 1, spec
    (form, content), = spec.items()
    if form == "json":
        return json.dumps(content, separators=(",", ":"), ensure_ascii=False).encode()
    if form == "text":
        return content.encode()
    if form == "hex":
        return bytes.fromhex(content)
    raise ValueError(f"unknown frame form {form}")


def frames(request):
    if "frames" in request:
        return [frame(f) for f in request["frames"]]
    return [frame(request)]


def check_shape(shape, value, shapes, at="params"):
    """Raises AssertionError where value does not match shape (see the vectors README)."""
    if isinstance(shape, dict) and any(k.startswith("$") for k in shape):
        if "$shape" in shape:
            return check_shape(shapes[shape["$shape"]], value, shapes, at)
        if "$type" in shape:
            kind = shape["$type"]
            # One type, or a list of the types allowed (["float", "null"]).
            kinds = kind if isinstance(kind, list) else [kind]
            assert any(type(value) is TYPES[k] for k in kinds), \
                f"{at}: {value!r} is of type {type(value).__name__}, expected {kind}"
            if "$decimals" in shape and value is not None:
                scale = 10 ** shape["$decimals"]
                assert round(value * scale) / scale == value, f"{at}: {value} has too many decimals"
            return None
        if "$list_of" in shape:
            assert type(value) is list, f"{at}: {value!r} is not a list"
            assert len(value) >= shape.get("$min_items", 0), f"{at}: too few items in {value!r}"
            for i, item in enumerate(value):
                check_shape(shape["$list_of"], item, shapes, f"{at}/{i}")
            return None
        if "$map_of" in shape:
            assert type(value) is dict, f"{at}: {value!r} is not an object"
            assert len(value) >= shape.get("$min_items", 0), f"{at}: too few items in {value!r}"
            for key, item in value.items():
                if shape.get("$keys", "any") == "pid":
                    assert re.fullmatch(r"[1-9][0-9]*", key), f"{at}: key {key!r} is not a PID"
                check_shape(shape["$map_of"], item, shapes, f"{at}/{key}")
            return None
        raise ValueError(f"unknown shape operator in {shape}")
    if isinstance(shape, dict):
        assert type(value) is dict, f"{at}: {value!r} is not an object"
        assert set(value) == set(shape), f"{at}: keys {sorted(value)}, expected {sorted(shape)}"
        for key, field in shape.items():
            check_shape(field, value[key], shapes, f"{at}/{key}")
        return None
    if isinstance(shape, list):
        assert type(value) is list and len(value) == len(shape), f"{at}: {value!r}, expected {shape!r}"
        for i, (s, v) in enumerate(zip(shape, value)):
            check_shape(s, v, shapes, f"{at}/{i}")
        return None
    # Scalars: equal and of the same JSON type (1 is not 1.0, True is not 1).
    assert type(value) is type(shape) and value == shape, f"{at}: {value!r}, expected {shape!r}"
    return None


def check_reply(body, expected, shapes, reply_schema):
    reply = json.loads(body)
    assert list(reply) == REPLY_KEYS, f"reply keys {list(reply)}"
    assert TIMESTAMP.match(reply["timestamp"]), f"timestamp {reply['timestamp']!r}"
    for key in ("msg_type", "msg_val", "id"):
        assert type(reply[key]) is type(expected[key]) and reply[key] == expected[key], \
            f"{key} is {reply[key]!r}, expected {expected[key]!r}"
    check_shape(expected["params"], reply["params"], shapes)
    errors = sorted(reply_schema.iter_errors(reply), key=str)
    assert not errors, f"reply.schema.json: {errors[0].message} at {list(errors[0].absolute_path)}"
    return reply


class Dealer:
    """A DEALER on the control socket, with or without the REQ delimiter."""

    def __init__(self, endpoint, req_style):
        self.req_style = req_style
        self.sock = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.linger = 0
        self.sock.connect(endpoint)
        self.envelope = "REQ-style envelope" if req_style else "DEALER without delimiter"

    def send(self, body):
        self.sock.send_multipart(([b""] if self.req_style else []) + list(body))

    def exchange(self, body):
        """Every reply before the sentinel's: there must be exactly one."""
        self.send(body)
        self.send([json.dumps({"msg_type": "cmd", "msg_val": "request_commands",
                               "id": SENTINEL_ID}).encode()])
        replies = []
        while True:
            assert self.sock.poll(5000), f"no sentinel reply within 5 s ({len(replies)} before it)"
            got = self.sock.recv_multipart()
            if self.req_style:
                assert got[0] == b"", f"reply lost its delimiter: {got!r}"
                got = got[1:]
            assert len(got) == 1, f"a reply of {len(got)} frames"
            try:
                parsed = json.loads(got[0])
            except ValueError:
                parsed = None
            if isinstance(parsed, dict) and parsed.get("msg_val") == "request_commands" \
                    and parsed.get("id") == SENTINEL_ID:
                return replies
            replies.append(got[0])

    def close(self):
        self.sock.close()


def req_exchange(endpoint, body):
    """A real REQ socket: the reply to one request."""
    sock = zmq.Context.instance().socket(zmq.REQ)
    sock.linger = 0
    sock.connect(endpoint)
    try:
        sock.send_multipart(body)
        assert sock.poll(5000), "no reply within 5 s"
        return sock.recv()
    finally:
        sock.close()


def strict_json(body):
    """The request as a JSON object, parsed as strictly as the server does; None if it is not one."""
    def no_constants(name):
        raise ValueError(name)
    try:
        value = json.loads(body.decode("utf-8"), parse_constant=no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def start_sleeper(spawn, name):
    sleep = shutil.which("sleep")
    assert sleep, "the sleeper needs a sleep binary on PATH"
    return spawn(name, sleep, "600")


@pytest.mark.parametrize("file", VECTOR_FILES)
def test_vectors(file, serve, spawn):
    doc = load(file)
    shapes = doc.get("shapes", {})
    variables = {}
    sleeper = start_sleeper(spawn, doc["sleeper"]) if "sleeper" in doc else None
    svc = serve(*doc["serve_args"])
    variables.update(ctrl=svc.ctrl, pub=svc.pub)
    if sleeper is not None:
        path = f"process/{doc['sleeper']}/{sleeper.pid}"
        eventually(lambda: svc.get(path)["msg_type"] == "ack", timeout=10, what="the sleeper in the tree")
        variables["pid"] = str(sleeper.pid)

    reply_schema = validator("reply")
    request_schema = validator("request")
    dealers = [Dealer(svc.ctrl, False), Dealer(svc.ctrl, True)]
    failures = []
    try:
        for raw in doc["vectors"]:
            vector = substitute(raw, variables)
            name, expected = vector["name"], vector["reply"]
            assert expected["id"] != SENTINEL_ID, f"{name} uses the sentinel id"
            body = frames(vector["request"])
            for dealer in dealers:
                try:
                    replies = dealer.exchange(body)
                    assert len(replies) == 1, f"{len(replies)} replies, expected exactly one: {replies!r}"
                    check_reply(replies[0], expected, shapes, reply_schema)
                except AssertionError as e:
                    failures.append(f"{name} ({dealer.envelope}): {e}")
            try:
                check_reply(req_exchange(svc.ctrl, body), expected, shapes, reply_schema)
            except AssertionError as e:
                failures.append(f"{name} (REQ socket): {e}")

            # request.schema.json describes exactly the requests the server accepts,
            # except refusals that depend on the service's state (STATE_ERRORS).
            request = strict_json(body[0]) if len(body) == 1 else None
            if request is not None:
                error = expected["params"].get("error", "")
                accepted = expected["msg_type"] == "ack" or any(e in error for e in STATE_ERRORS)
                valid = request_schema.is_valid(request)
                if valid != accepted:
                    failures.append(f"{name}: request.schema.json says {'valid' if valid else 'invalid'}, "
                                    f"the server {'accepts' if accepted else 'refuses'} it")
    finally:
        for dealer in dealers:
            dealer.close()
    runs = len(doc["vectors"]) * 3
    assert not failures, f"{len(failures)} failures in {runs} runs of {file}:\n" + "\n".join(failures)
    assert svc.get("")["msg_type"] == "ack", "the service still answers"


# Nacks for well-formed requests: about the tree (a get whose path names
# nothing) or about the configuration in force, which a schema cannot see.
STATE_ERRORS = (
    "Invalid path: ",
    "configure is disabled",
    "reset_statistics is disabled",
    "which is not configured",
    "which is already configured",
    "would share the tree key",
    "must not be above",
    "in both add and remove",
)


def test_odin_data_vectors_keep_to_its_msg_vals():
    """Every request and reply of odin_data.json is one odin-data's strict C++
    IpcMessage accepts: all five keys, a msg_val from its list."""
    doc = load("odin_data.json")
    known = set(doc["odin_data_msg_vals"])
    assert not known & {"get", "process_event", "alarm"}
    for vector in doc["vectors"]:
        request = vector["request"]["json"]
        assert list(request) == ["msg_type", "msg_val", "id", "timestamp", "params"], vector["name"]
        assert {request["msg_val"], vector["reply"]["msg_val"]} <= known, vector["name"]


def test_vector_files_exist_and_count():
    assert VECTOR_FILES == ["commands.json", "configure.json", "malformed.json", "odin_data.json",
                            "paths.json", "process.json"]
    names = [(f, v["name"]) for f in VECTOR_FILES for v in load(f)["vectors"]]
    assert len(names) == len(set(names))
    assert len(names) >= 60


@pytest.mark.parametrize("name", ["request", "reply", "snapshot"])
def test_schemas_are_draft_2020_12(name):
    doc = schema(name)
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(doc)


def test_reply_and_snapshot_share_the_tree():
    reply, snapshot = schema("reply")["$defs"], schema("snapshot")["$defs"]
    published_only = {"alarm"}
    for name, definition in snapshot.items():
        if name in published_only:
            continue
        assert reply[name] == definition, f"$defs/{name} differs between reply and snapshot schemas"


def receive_snapshots(svc, encoding, count, ready=lambda msg: True):
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.linger = 0
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(svc.pub)
    messages = []
    try:
        while len(messages) < count:
            assert sub.poll(5000), "no snapshot within 5 s"
            parts = sub.recv_multipart()
            assert len(parts) == 1, "a snapshot is one frame"
            msg = json.loads(parts[0]) if encoding == "json" else msgpack.unpackb(parts[0], raw=False)
            if messages or ready(msg):
                messages.append(msg)
    finally:
        sub.close()
    return messages


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
def test_snapshots_match_schema(encoding, serve, spawn):
    name = f"odin-status-schema-sleeper-{encoding}"
    sleeper = start_sleeper(spawn, name)
    svc = serve("--disks", "/,/tmp", "--interfaces", "lo", "--processes", f"{name},absent-{name}",
                "--rate", "20", "--pub-encoding", encoding)
    pid = str(sleeper.pid)
    messages = receive_snapshots(svc, encoding, 5,
                                 ready=lambda msg: pid in msg["params"]["process"][name])
    snapshot_schema = validator("snapshot")
    for msg in messages:
        assert list(msg) == REPLY_KEYS
        assert TIMESTAMP.match(msg["timestamp"])
        errors = list(snapshot_schema.iter_errors(msg))
        assert not errors, errors[0].message
        assert msg["params"]["process"][f"absent-{name}"] == {}
        assert type(msg["params"]["process"][name][pid]["cpu_percent"]) is float
    ids = [m["id"] for m in messages]
    assert ids == list(range(ids[0], ids[0] + len(ids))), f"consecutive cycle numbers: {ids}"


def a_status_reply(serve, spawn):
    sleeper = start_sleeper(spawn, "odin-status-schema-sleeper-reply")
    svc = serve("--interfaces", "lo", "--processes", "odin-status-schema-sleeper-reply", "--rate", "10")
    path = f"process/odin-status-schema-sleeper-reply/{sleeper.pid}"
    eventually(lambda: svc.get(path)["msg_type"] == "ack", timeout=10, what="the sleeper in the tree")
    return svc, str(sleeper.pid)


def test_schemas_reject_wrong_types_and_allow_new_blocks(serve, spawn):
    """The schemas can fail: mutations of real messages are refused, additions allowed."""
    svc, pid = a_status_reply(serve, spawn)
    reply = svc.get("")
    assert reply["msg_type"] == "ack"
    reply_schema, snapshot_schema = validator("reply"), validator("snapshot")
    assert reply_schema.is_valid(reply)
    proc = ("params", "process", "odin-status-schema-sleeper-reply", pid)

    def mutated(change):
        copied = copy.deepcopy(reply)
        change(copied)
        return copied

    def at(msg, keys):
        for key in keys:
            msg = msg[key]
        return msg

    refused = {
        "percent as string": lambda r: r["params"]["disk"]["_"].update(percent="13.1"),
        "negative total": lambda r: r["params"]["disk"]["_"].update(total=-1),
        "fractional counter": lambda r: r["params"]["network"]["lo"].update(bytes_recv=1.5),
        "missing counter": lambda r: r["params"]["network"]["lo"].pop("dropin"),
        "percent over 100": lambda r: r["params"]["disk"]["_"].update(percent=100.1),
        "affinity of strings": lambda r: at(r, proc).update(cpu_affinity=["0"]),
        "empty affinity": lambda r: at(r, proc).update(cpu_affinity=[]),
        "pid key not decimal": lambda r: r["params"]["process"]["odin-status-schema-sleeper-reply"].update(
            {"p1": at(r, proc)}),
        "disk key with slash": lambda r: r["params"]["disk"].update({"/tmp": r["params"]["disk"]["_"]}),
        "missing block": lambda r: r["params"].pop("network"),
        "id too large": lambda r: r.update(id=4294967296),
        "timestamp with zone": lambda r: r.update(timestamp=r["timestamp"] + "+00:00"),
        "unknown message key": lambda r: r.update(extra=1),
        "unknown msg_type": lambda r: r.update(msg_type="notify"),
    }
    for what, change in refused.items():
        assert not reply_schema.is_valid(mutated(change)), f"reply.schema.json accepts {what}"
    assert reply_schema.is_valid(mutated(lambda r: r["params"].update(gpu={"0": {"temperature": 40}}))), \
        "a new top-level block must be allowed"
    assert reply_schema.is_valid(mutated(lambda r: r["params"]["disk"]["_"].update(inodes_free=5))), \
        "a new leaf must be allowed"

    nack = svc.get("nope")
    assert reply_schema.is_valid(nack)
    nack["params"]["detail"] = "x"
    assert not reply_schema.is_valid(nack), "a nack's params are {error} only"

    snapshot = dict(reply, msg_type="notify", msg_val="status", id=1)
    assert snapshot_schema.is_valid(snapshot)
    assert not snapshot_schema.is_valid(dict(snapshot, id=0)), "cycle numbers start at 1"
    broken = copy.deepcopy(snapshot)
    broken["params"]["disk"]["_"]["used"] = "many"
    assert not snapshot_schema.is_valid(broken)
    assert snapshot_schema.is_valid(dict(snapshot, msg_val="some_later_notice", params={"x": 1})), \
        "unknown notify msg_vals are allowed (subscribers ignore them)"


def test_metadata_replies_match_schema(serve, spawn):
    svc, pid = a_status_reply(serve, spawn)
    reply_schema = validator("reply")
    base = f"process/odin-status-schema-sleeper-reply/{pid}"
    for path in ["", "disk", "disk/_", "network/lo", "process", base, base + "/cpu_affinity",
                 base + "/cpu_affinity/0", base + "/cpu_percent"]:
        for metadata in (False, True):
            reply = svc.get(path, metadata)
            assert reply["msg_type"] == "ack", reply
            errors = list(reply_schema.iter_errors(reply))
            assert not errors, f"{path} metadata={metadata}: {errors[0].message}"
    # Metadata that does not fit its value is refused. (An int value said to be
    # "float" is not: JSON Schema counts integers as numbers; the vectors check it.)
    reply = svc.get("disk/_/total", True)
    for change in [{"type": "str"}, {"type": "list"}, {"element_type": "int"}, {"writeable": True}]:
        assert not reply_schema.is_valid({**reply, "params": {**reply["params"], **change}}), change
    reply = svc.get(base + "/cpu_affinity", True)
    del reply["params"]["element_type"]
    assert not reply_schema.is_valid(reply), "a list leaf's metadata has element_type"


def test_readme_examples_match_schemas():
    """Every complete message in protocol/README.md's JSON examples is valid."""
    text = (PROTOCOL / "README.md").read_text()
    blocks = re.findall(r"```json\n(.*?)```", text, re.S)
    messages = []
    for block in blocks:
        if "..." in block:
            continue  # an abbreviated example, not a message
        try:
            messages.append(json.loads(block))
        except ValueError:
            messages.extend(json.loads(line) for line in block.splitlines() if line.strip())
    by_type = {"cmd": "request", "ack": "reply", "nack": "reply", "notify": "snapshot"}
    checked = 0
    for msg in messages:
        kind = by_type.get(msg.get("msg_type"))
        if kind is None:
            continue  # a leaf's metadata object, not a message
        errors = list(validator(kind).iter_errors(msg))
        assert not errors, f"README example {msg}: {errors[0].message}"
        checked += 1
    assert checked >= 14, f"only {checked} README examples found"
