"""Lorebooks (World Info) at prompt time: which entries fire, and where their text goes.

`model` is the data (what gateway sends), `matching` the key rules, `engine` the activation
with SillyTavern's semantics (selective logic, timed effects, recursion, budget), `macros` the
card macros expanded when the prompt is built.
"""
