"""The contract's limits, in a module without pydantic: services import them
on every path, and pydantic is a third of a cold start (it loads only where a
body is parsed)."""

NAME_MAX = 255
DETAIL_MAX = 2000
TEXT_MAX = 10_000
MEDIAS_MAX = 10
PARTICIPANTS_MAX = 1000
FILE_SIZE_MAX = 30 * 1024 * 1024  # 30 MiB, VoIPBIN's upload limit
# A MIME type as RFC 6838 names them (type "/" subtype, each 1 to 127 of its
# characters), without parameters; compared case-insensitively, stored lower-case.
CONTENT_TYPE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$"
EMOJI_MAX = 32
REACTION_EMOJI_MAX = 50  # different emoji on one message
REACTION_OWNERS_SHOWN = 3  # a message shows each emoji's newest owners (and its count); the rest page
