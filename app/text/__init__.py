"""Pure text rules on the ground floor: terms, sentences, intents and explicit memories.

Nothing here imports from the rest of ``app``, so every layer above may use them.
"""
