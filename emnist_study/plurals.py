"""How counts read in the project's messages: "1 epoch", "3 epochs", never "1 epochs" or "epoch(s)"."""


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """"1 epoch", "2 epochs"; `nouns` where the plural is not the noun and an s ("1 copy", "2 copies")."""
    return f"{count:,} {noun if count == 1 else nouns or noun + 's'}"
