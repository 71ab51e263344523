"""SnapMap: HR exports in, Eightfold feeds out."""

import os as _os

# Run-time safety defaults, set before any library reads them: the packaged model is loaded offline
# only (nothing is ever downloaded at run time), and lance/tokenizers stay quiet and single-threaded.
for _key, _value in (
    ("HF_HUB_OFFLINE", "1"),
    ("TRANSFORMERS_OFFLINE", "1"),
    ("LANCE_LOG", "error"),
    ("TOKENIZERS_PARALLELISM", "false"),
):
    _os.environ.setdefault(_key, _value)
