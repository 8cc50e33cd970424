"""The vocabulary's two reserved tokens, by string and by id (DESIGN §2): ``<pad>`` = 0, ``<unk>`` = 1.

Kept apart from :mod:`safr_lightning.data.tokenizer` so that the metrics and the model can name PAD
without importing the ``tokenizers`` library.
"""

PAD_TOKEN, UNK_TOKEN = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1
