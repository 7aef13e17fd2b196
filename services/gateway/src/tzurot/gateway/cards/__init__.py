"""Community character formats: Character Card V2/V3 (JSON, PNG, CHARX) and lorebooks.

`spec` holds the published schemas (malfoy's V2, kwaroran's V3) as pydantic models that keep
every unknown field; `codec` reads and writes the containers (JSON, PNG tEXt chunks `chara`
and `ccv3`, the CHARX zip); `lorebooks` converts SillyTavern world info and card books to one
normalised entry shape; `mapping` turns a card into a personality and back.
"""
