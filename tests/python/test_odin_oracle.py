"""GET semantics against odin-control 2.1.0's own SystemStatusController."""

import json

import pytest
from conftest import ADDED_BLOCKS, REPO
from odin_control.adapters.parameter_tree import ParameterTreeError
from odin_control.adapters.system_status import SystemStatusController


@pytest.fixture
def pair(serve):
    options = {"disks": "/,/tmp", "interfaces": "lo", "processes": "no-such-proc-xyz"}
    odin = SystemStatusController(options)
    odin.monitor()
    ours = serve("--disks", options["disks"], "--interfaces", "lo",
                 "--processes", options["processes"])
    return odin, ours


# What odin-status appends to odin's tree, by place (see protocol/README.md).
ADDED_TOP = ADDED_BLOCKS
ADDED_DISK = ["inodes_total", "inodes_free", "read_only", "write_rate", "time_to_full"]
ADDED_NETWORK = ["bytes_sent_rate", "bytes_recv_rate", "packets_sent_rate", "packets_recv_rate",
                 "errin_rate", "errout_rate", "dropin_rate", "dropout_rate",
                 "link_up", "speed_mbps", "mtu"]


def added_at(where):
    """The keys odin-status appends after odin's at a place (keys from the root)."""
    if where == ():
        return ADDED_TOP
    if len(where) == 2 and where[0] == "disk":
        return ADDED_DISK
    if len(where) == 2 and where[0] == "network":
        return ADDED_NETWORK
    return []


def check_odin_part(ours, theirs, where):
    """odin's keys all present, first and in odin's order, with odin's leaf types
    and metadata; after them exactly the documented additions."""
    if isinstance(theirs, dict):
        assert isinstance(ours, dict), (where, ours)
        assert list(ours)[:len(theirs)] == list(theirs), where
        assert list(ours)[len(theirs):] == added_at(where), where
        for key in theirs:
            if key in ("writeable", "type", "element_type"):
                assert ours[key] == theirs[key], (where, key)
            else:
                check_odin_part(ours[key], theirs[key], where + (key,))
    else:
        assert shape(ours) == shape(theirs), where


def shape(value):
    """Keys and leaf types, without the live numbers."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    return type(value).__name__


PATHS = ["", "disk", "disk/", "disk/_tmp", "disk/_tmp/", "disk/_tmp/total", "disk/_tmp/total/",
         "disk/_/percent", "network", "network/", "network/lo", "network/lo/bytes_recv",
         "process", "process/", "process/no-such-proc-xyz"]

INVALID = ["nonexistent", "disk/_nope/total", "/", "//", "/disk", "disk//", "disk//_tmp",
           "disk/_tmp//", "Disk", "network/eth99", "process/nope", "status/network/bad",
           "/bad/path"]


@pytest.mark.parametrize("metadata", [False, True])
def test_same_answers_as_odin(pair, metadata):
    odin, ours = pair
    for path in PATHS:
        theirs = odin.get(path, with_metadata=metadata)
        reply = ours.get(path, metadata)
        assert reply["msg_type"] == "ack", (path, reply)
        where = tuple(name for name in path.split("/") if name)
        check_odin_part(reply["params"], theirs, where)
        if path.startswith("disk/_tmp/total"):
            assert reply["params"]["value"] == theirs["value"]
    for path in INVALID:
        with pytest.raises(ParameterTreeError) as raised:
            odin.get(path, with_metadata=metadata)
        reply = ours.get(path, metadata)
        assert reply["msg_type"] == "nack", path
        assert reply["params"]["error"] == str(raised.value) == f"Invalid path: {path}"


def test_where_odin_raises_index_errors_we_say_invalid_path(pair):
    odin, ours = pair
    for path in ["disk/_tmp/total/x", "disk/_tmp/total/0", "disk/_tmp/total//"]:
        with pytest.raises(ParameterTreeError) as raised:
            odin.get(path)
        assert "Index error" in str(raised.value)
        assert ours.get(path)["params"] == {"error": f"Invalid path: {path}"}


def test_json_text_is_what_odin_would_serve(pair):
    odin, ours = pair
    # Floats stay floats and ints stay ints once serialised.
    theirs = json.loads(json.dumps(odin.get("disk/_tmp")))
    mine = ours.value("disk/_tmp")
    assert {k: type(mine[k]) for k in theirs} == {k: type(v) for k, v in theirs.items()}


def test_additions_are_as_documented(pair):
    """What odin-status appends is the tree the snapshot schema describes."""
    jsonschema = pytest.importorskip("jsonschema")
    _, ours = pair
    schema = json.loads((REPO / "protocol" / "snapshot.schema.json").read_text())
    tree_schema = {**schema, "$ref": "#/$defs/tree"}
    del tree_schema["allOf"], tree_schema["required"], tree_schema["properties"]
    del tree_schema["additionalProperties"], tree_schema["type"]
    tree = ours.value("")
    jsonschema.Draft202012Validator(tree_schema).validate(tree)
    for key in ADDED_DISK:
        assert key in tree["disk"]["_tmp"], key
    assert tree["network"]["lo"]["link_up"] is True
    assert tree["network"]["lo"]["speed_mbps"] is None  # lo has no link speed
    assert isinstance(tree["network"]["lo"]["mtu"], int)
