"""Keys every dialog has.  A modal screen hides the app's bindings, so each
dialog binds `?` and F1 itself (with a text input focused, `?` is typed:
F1 still opens the help)."""

from textual.binding import Binding

HELP = Binding("question_mark,f1", "app.help", "Help", show=False, key_display="?")
