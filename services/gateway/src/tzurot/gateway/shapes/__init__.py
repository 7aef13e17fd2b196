"""The shapes.inc backup import: documents recognised by their shape (`documents`) and
mapped onto a personality, its LLM config, settings and custom fields (`mapping`)."""
