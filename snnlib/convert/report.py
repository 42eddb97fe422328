"""What :func:`~snnlib.convert.check` finds: problems with their fixes, the report, the error."""
from __future__ import annotations

from dataclasses import dataclass, field

import tensorflow as tf

__all__ = [
    "EXTENDING",
    "Problem",
    "CheckReport",
    "ConversionError",
]

layers = tf.keras.layers

#: Where the README explains how to add a converter (named in the messages).
EXTENDING = "see 'Extending snnlib' in the README"


# --------------------------------------------------------------------------------------------
# Problems, the report of check(), and the error
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Problem:
    """Something that stops a model from converting, and how to fix it.

    Attributes
    ----------
    name : str
        The layer's name (the model's, for a problem of the model as a whole).
    type : str
        The layer's (or model's) class name, e.g. "MaxPooling2D".
    reason : str
        Why it cannot be converted.
    fix : str
        What to do instead ("" when there is nothing to add).
    model_level : bool
        A problem of the whole model (not built, subclassed, several inputs, ...).
    """

    name: str
    type: str
    reason: str
    fix: str = ""
    model_level: bool = False

    def __str__(self) -> str:
        where = (f"model {self.name!r} ({self.type})" if self.model_level
                 else f"{self.type} {self.name!r}")
        return f"{where}: {self.reason}" + (f"; {self.fix}" if self.fix else "")


@dataclass
class CheckReport:
    """What :func:`check` found: the problems (each with its fix) and what conversion changes.

    Attributes
    ----------
    model : str
        The model's name.
    problems : list of Problem
        Every layer (or model property) that will not convert; empty when it converts.
    notes : list of str
        What the conversion changes or decides (a dropped softmax, a folded batch
        normalization, ...), as far as known: the notes that depend on the neighbouring layers
        are only listed once there is no problem.
    supported : str
        The supported layer types, from the registry.
    """

    model: str
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    supported: str = ""

    @property
    def ok(self) -> bool:
        """True when the model converts."""
        return not self.problems

    def __str__(self) -> str:
        if self.ok:
            lines = [f"Model {self.model!r} converts."]
        else:
            count = len(self.problems)
            lines = [f"Cannot convert model {self.model!r}: {count} "
                     f"{'problem' if count == 1 else 'problems'}, each with its fix:"]
            lines += [f"  - {problem}" for problem in self.problems]
        if self.notes:
            lines.append("What the conversion changes:")
            lines += [f"  - {note}" for note in self.notes]
        if not self.ok:
            lines.append(f"Supported: {self.supported}.")
        return "\n".join(lines)

    def error(self) -> ConversionError:
        """The :class:`ConversionError` that :func:`convert` raises for these problems."""
        return ConversionError(str(self), self.problems)


class ConversionError(ValueError):
    """The Keras model cannot be converted; the message lists every problem with its fix.

    Attributes
    ----------
    problems : list of Problem
        The same problems, one object each.
    """

    def __init__(self, message: str, problems: list[Problem] | tuple = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)
