"""Community character formats: Character Card V2/V3 (JSON, PNG, CHARX) and lorebooks.

`spec` holds the published schemas (malfoy's V2, kwaroran's V3) as pydantic models that keep
every unknown field; `codec` reads and writes the containers (JSON, PNG tEXt chunks `chara`
and `ccv3`, the CHARX zip); `lorebooks` reads and exports lorebook files: SillyTavern world
info (`lore_world_info`) and card books (`lore_card_book`) in one normalised entry shape
(`lore_model`), checked alike (`lore_checks`); `mapping` turns a card into a personality and
back.
"""
