"""pyzmq clients as control scripts write them: REQ, odin-data-style DEALER, SUB."""

import json

import msgpack
import zmq

from conftest import has_odins_blocks_first


def command(msg_val, msg_id, **params):
    return json.dumps({"msg_type": "cmd", "msg_val": msg_val, "id": msg_id,
                       "timestamp": "2026-11-26T06:08:46.456235", "params": params}).encode()


def test_dealer_without_delimiter(serve):
    svc = serve("--interfaces", "lo")
    ctx = zmq.Context.instance()
    dealer = ctx.socket(zmq.DEALER)
    dealer.linger = 0
    dealer.connect(svc.ctrl)
    try:
        dealer.send(command("get", 77, path="network/lo/bytes_recv"))
        assert dealer.poll(3000)
        frames = dealer.recv_multipart()
        assert len(frames) == 1
        reply = json.loads(frames[0])
        assert reply["msg_type"] == "ack" and reply["id"] == 77
        assert isinstance(reply["params"]["value"], int)
    finally:
        dealer.close()


def test_req_nack_carries_error(serve):
    svc = serve("--interfaces", "lo")
    ctx = zmq.Context.instance()
    req = ctx.socket(zmq.REQ)
    req.linger = 0
    req.connect(svc.ctrl)
    try:
        req.send(b"{not json")
        assert req.poll(3000)
        reply = json.loads(req.recv())
        assert reply["msg_type"] == "nack" and reply["msg_val"] == "illegal" and reply["id"] == 0
        assert reply["params"]["error"].startswith("The request is not valid JSON")
        # The REQ socket is usable again after its reply.
        req.send(command("status", 5))
        assert req.poll(3000)
        assert json.loads(req.recv())["msg_type"] == "ack"
    finally:
        req.close()


def test_sub_msgpack_snapshot(serve):
    svc = serve("--interfaces", "lo", "--rate", "20", "--pub-encoding", "msgpack")
    ctx = zmq.Context.instance()
    sub = ctx.socket(zmq.SUB)
    sub.linger = 0
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(svc.pub)
    try:
        assert sub.poll(3000)
        snap = msgpack.unpackb(sub.recv())
        assert list(snap) == ["msg_type", "msg_val", "id", "timestamp", "params"]
        assert snap["msg_type"] == "notify" and snap["msg_val"] == "status"
        assert has_odins_blocks_first(snap["params"]), list(snap["params"])
    finally:
        sub.close()
