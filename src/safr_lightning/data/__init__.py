"""Data: sources (hub / local / synthetic), the word-level tokenizer, batching, the DataModule."""
