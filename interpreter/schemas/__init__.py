"""JSON Schemas shipped with the interpreter (package data; see `interpreter.schema`)."""
