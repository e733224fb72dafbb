"""GET semantics against odin-control 2.1.0's own SystemStatusController."""

import json

import pytest
from odin_control.adapters.parameter_tree import ParameterTreeError
from odin_control.adapters.system_status import SystemStatusController

from conftest import ODIN_BLOCKS, has_odins_blocks_first


@pytest.fixture
def pair(serve):
    options = {"disks": "/,/tmp", "interfaces": "lo", "processes": "no-such-proc-xyz"}
    odin = SystemStatusController(options)
    odin.monitor()
    ours = serve("--disks", options["disks"], "--interfaces", "lo",
                 "--processes", options["processes"])
    return odin, ours


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


def odins_part(path, params, theirs):
    """Our answer cut down to odin's keys, after checking that what is cut
    off is only the documented additions of the whole tree."""
    if path != "":
        return params
    assert list(theirs) == ODIN_BLOCKS
    assert has_odins_blocks_first(params), list(params)
    return {k: params[k] for k in theirs}


@pytest.mark.parametrize("metadata", [False, True])
def test_same_answers_as_odin(pair, metadata):
    odin, ours = pair
    for path in PATHS:
        theirs = odin.get(path, with_metadata=metadata)
        reply = ours.get(path, metadata)
        assert reply["msg_type"] == "ack", (path, reply)
        params = odins_part(path, reply["params"], theirs)
        assert list(params) == list(theirs), path
        assert shape(params) == shape(theirs), path
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
    assert {k: type(v) for k, v in mine.items()} == {k: type(v) for k, v in theirs.items()}
