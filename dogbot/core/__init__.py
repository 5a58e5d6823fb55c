"""The domain: catalog work (photo intake, labelling, reporting), labels, breeds, members, vocabulary.

Imports only ``ml`` and ``storage``; ``jobs``, the bot and the CLI build on it (README "How it is built").
"""
