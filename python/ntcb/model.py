"""Model files (.ntcm): a codec model fitted on a sample of a dataset.

``python3 -m ntcb.model extract IN.ntcb OUT.ntcm`` copies the model that
`ntc encode --codec ntc` fitted and stored in IN.ntcb into a model file that
`ntc encode --model OUT.ntcm` encodes other shards with (what `ntc fit`
writes directly, in builds that have it).
"""

from __future__ import annotations

import json
import os
import sys

from .container import Container, build
from .errors import CorruptError, NtcbError

MODEL_FORMAT_NAME = "ntcm"


def extract(src: str, dst: str) -> None:
    """Writes the model stored in the .ntcb file src to the .ntcm file dst
    (atomically: a temporary file renamed into place)."""
    c = Container(src)
    try:
        m = json.loads(bytes(c.metadata).decode("utf-8"))
        cid = next((ch.codec for ch in c.chunks), None)
        blob = c.read_model(cid) if cid is not None else None
        if blob is None or m.get("format") != "ntcb":
            raise CorruptError(f"holds no codec model (codec {m.get('codec')} is not learned)", src)
        lay = m["layout"]
        meta = {
            "format": MODEL_FORMAT_NAME,
            "tool": "python ntcb.model extract",
            "codec": m["codec"],
            "codec_params": m.get("codec_params"),
            "layout": m["layout"],
            "dtype": m.get("dtype", "float16"),
            "shape": [0, lay["tokens"], lay["dim"]],
        }
        if meta["codec_params"] is None:
            del meta["codec_params"]
        data = build([(cid, bytes(blob))], json.dumps(meta, indent=2).encode())
    except (ValueError, KeyError, TypeError) as e:
        raise CorruptError(f"metadata: {e}", src) from None
    finally:
        c.close()
    tmp = f"{dst}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, dst)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 3 or argv[0] != "extract":
        print("usage: python3 -m ntcb.model extract IN.ntcb OUT.ntcm", file=sys.stderr)
        return 2
    try:
        extract(argv[1], argv[2])
    except (NtcbError, OSError) as e:
        print(f"ntcb.model: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
