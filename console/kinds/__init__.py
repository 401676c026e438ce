"""The registry of task kinds: each kind declared once.

A ``TaskKind`` names its options (a frozen dataclass made with
``console.options.opt``), its engine factory and its screen.  The factory
and the screen are lazy references ("module:attribute"), resolved only by
the composition roots that need them (the engine when it creates a
configured task, the console when it opens a task's screen): this package,
like ``console.config`` which reads it, imports no engine and no Textual.
"""
