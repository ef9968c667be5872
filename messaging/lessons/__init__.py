"""Lessons: guided, self-checking tutorials that run on the real board.

A lesson is a TOML file in `lessons/` (the format is docs/lessons-format.md): `spec` parses
and validates it, `catalog` loads the files into `Lesson` rows, `steps` plays a lesson's steps
through the services, `goals` checks its goals against the stored state and `quiz` generates
and grades its end-of-lesson quiz with the engine.
"""
