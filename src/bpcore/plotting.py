"""Learning curves of a fit, drawn with matplotlib (the optional ``plot`` extra).

``LossCurveDisplay`` follows scikit-learn's Display pattern
(``sklearn.metrics.RocCurveDisplay``): the constructor stores the curves,
``plot(ax=None)`` draws them and keeps the matplotlib objects as attributes
(``ax_``, ``figure_``, ``line_``, ...), and ``from_estimator`` /
``from_history`` build the display from a fitted model. matplotlib is
imported only when drawing, so importing bpcore never needs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure, SubFigure
    from matplotlib.lines import Line2D

__all__ = ["LossCurveDisplay"]


def _require_matplotlib(caller: str) -> None:
    """Raise an ImportError naming the ``plot`` extra if matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"{caller} requires matplotlib, which is not installed. Install "
            "bpcore's plotting extra: pip install 'bpcore[plot]' "
            "(or pip install matplotlib)."
        ) from exc


def _curve(values: ArrayLike | None, name: str) -> NDArray[np.float64] | None:
    """``values`` as a 1-D float array, or None when absent or empty."""
    if values is None:
        return None
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one value per epoch (1-D), got shape {arr.shape}.")
    return arr if arr.size else None


class LossCurveDisplay:
    """Training loss, validation loss and score, and learning rate per epoch.

    The training and validation losses share the left axis; the validation
    score (accuracy or R², as the estimator's ``score``) has its own axis on
    the right; the learning rate has its own panel below, on the same epoch
    axis (log scale when it spans more than a factor of 100). One legend for
    all curves sits in a row above the plot, clear of the curves. On a figure
    that the display creates (``ax=None``), constrained layout keeps every
    label inside the canvas of a plain ``savefig``. Curves that were not
    recorded are simply not drawn. Build it with
    :meth:`from_estimator` or :meth:`from_history` rather than directly.

    Parameters
    ----------
    loss : array-like of shape (n_epochs,)
        Training loss per epoch (``loss_curve_``).
    val_loss : array-like of shape (n_epochs,), default=None
        Validation loss per epoch (``history_.val_loss``).
    val_score : array-like of shape (n_epochs,), default=None
        Validation score per epoch (``validation_scores_``).
    learning_rate : array-like of shape (n_epochs,), default=None
        Learning rate used in each epoch (``history_.lr``).
    name : str, default=None
        Name of the model, used in the title.

    Attributes
    ----------
    line_ : matplotlib.lines.Line2D
        The training-loss curve.
    val_loss_line_ : matplotlib.lines.Line2D or None
        The validation-loss curve, if recorded.
    val_score_line_ : matplotlib.lines.Line2D or None
        The validation-score curve, if recorded.
    lr_line_ : matplotlib.lines.Line2D or None
        The learning-rate curve, if recorded.
    ax_ : matplotlib.axes.Axes
        The axes of the losses (the one passed to :meth:`plot`).
    score_ax_ : matplotlib.axes.Axes or None
        The right-hand axes of the validation score.
    lr_ax_ : matplotlib.axes.Axes or None
        The panel of the learning rate, under :attr:`ax_`.
    figure_ : matplotlib.figure.Figure
        The figure holding the axes.

    See Also
    --------
    LossCurveDisplay.from_estimator : Plot the curves of a fitted estimator.
    LossCurveDisplay.from_history : Plot the curves of a ``bpcore.train`` run.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from bpcore.plotting import LossCurveDisplay
    >>> display = LossCurveDisplay(loss=[0.9, 0.5, 0.4], val_score=[0.7, 0.8, 0.85])
    >>> display = display.plot()
    >>> [line.get_label() for line in display.ax_.get_legend().get_lines()]
    ['training loss', 'validation score']
    """

    def __init__(
        self,
        *,
        loss: ArrayLike,
        val_loss: ArrayLike | None = None,
        val_score: ArrayLike | None = None,
        learning_rate: ArrayLike | None = None,
        name: str | None = None,
    ) -> None:
        self.loss = loss
        self.val_loss = val_loss
        self.val_score = val_score
        self.learning_rate = learning_rate
        self.name = name

    def plot(self, ax: Axes | None = None, *, name: str | None = None) -> LossCurveDisplay:
        """Draw the curves.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, default=None
            Axes to draw the losses on (the score axis is its twin; the
            learning-rate panel takes the bottom quarter of its grid cell).
            A new figure with constrained layout is created if None.
        name : str, default=None
            Name of the model for the title; overrides the one given at
            construction.

        Returns
        -------
        display : LossCurveDisplay
            This object, with the matplotlib objects stored as attributes.

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import matplotlib.pyplot as plt
        >>> from bpcore.plotting import LossCurveDisplay
        >>> fig, ax = plt.subplots()
        >>> display = LossCurveDisplay(loss=[0.9, 0.5], learning_rate=[0.1, 0.05]).plot(ax=ax)
        >>> display.ax_ is ax
        True
        """
        _require_matplotlib("LossCurveDisplay.plot")
        loss = _curve(self.loss, "loss")
        if loss is None:
            raise ValueError("LossCurveDisplay needs at least one epoch of training loss.")
        curves = {
            "val_loss": _curve(self.val_loss, "val_loss"),
            "val_score": _curve(self.val_score, "val_score"),
            "learning_rate": _curve(self.learning_rate, "learning_rate"),
        }
        for key, values in curves.items():
            if values is not None and values.size != loss.size:
                raise ValueError(
                    f"{key} has {values.size} values but the training loss has "
                    f"{loss.size} epochs: give one value per epoch."
                )

        figure_owned = ax is None
        if ax is None:
            import matplotlib.pyplot as plt

            # Constrained layout keeps every label, the twin axis and the
            # legend inside the canvas of a plain ``savefig``.
            fig = plt.figure(layout="constrained")
            ax = fig.add_subplot()
        # The rate's panel is cut from `ax`'s slot before any twin copies
        # `ax`'s position.
        self.lr_ax_: Axes | None = None
        if curves["learning_rate"] is not None:
            self.lr_ax_ = _panel_below(ax)
        epochs = np.arange(1, loss.size + 1)
        lines: list[Line2D] = []

        (self.line_,) = ax.plot(epochs, loss, color="C0", label="training loss")
        lines.append(self.line_)
        self.val_loss_line_: Line2D | None = None
        if curves["val_loss"] is not None:
            (self.val_loss_line_,) = ax.plot(
                epochs, curves["val_loss"], color="C1", label="validation loss"
            )
            lines.append(self.val_loss_line_)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")

        self.score_ax_: Axes | None = None
        self.val_score_line_: Line2D | None = None
        if curves["val_score"] is not None:
            self.score_ax_ = ax.twinx()
            (self.val_score_line_,) = self.score_ax_.plot(
                epochs, curves["val_score"], color="C2", label="validation score"
            )
            self.score_ax_.set_ylabel("validation score")
            lines.append(self.val_score_line_)
            # Twins are drawn over `ax`; lift `ax` (with a clear background)
            # so its curves are not hidden behind the score axes.
            ax.set_zorder(self.score_ax_.get_zorder() + 1)
            ax.patch.set_visible(False)

        self.lr_line_: Line2D | None = None
        if self.lr_ax_ is not None and curves["learning_rate"] is not None:
            # The rate on its own panel under the losses, sharing the epoch
            # axis: on a third y axis it read as a value of the score axis.
            (self.lr_line_,) = self.lr_ax_.plot(
                epochs, curves["learning_rate"], color="C3", label="learning rate"
            )
            lr = curves["learning_rate"]
            if lr.min() > 0 and lr.max() / lr.min() > 100:
                self.lr_ax_.set_yscale("log")
            self.lr_ax_.set_ylabel("learning rate")
            self.lr_ax_.set_xlabel("epoch")
            ax.set_xlabel("")
            ax.tick_params(labelbottom=False)
            lines.append(self.lr_line_)

        # One legend for every curve, in rows above the loss axes (outside
        # them): inside, no place is sure to miss the score's twin curve. On
        # a figure of its own there is width for one row; on a user's axes
        # (maybe one of many) two entries a row.
        ncols = len(lines) if figure_owned else min(len(lines), 2)
        ax.legend(lines, [str(line.get_label()) for line in lines], loc="lower left",
                  bbox_to_anchor=(0.0, 1.01), ncols=ncols, borderaxespad=0.0,
                  frameon=False, fontsize="small")
        title = name if name is not None else self.name
        if title is not None:
            if figure_owned:
                ax.figure.suptitle(title)
            else:
                rows = -(-len(lines) // ncols)
                ax.set_title(title, pad=8 + 14 * rows)  # above the legend's rows
        self.ax_: Axes = ax
        self.figure_: Figure | SubFigure = ax.figure
        return self

    @classmethod
    def from_estimator(
        cls, estimator: Any, *, ax: Axes | None = None, name: str | None = None
    ) -> LossCurveDisplay:
        """Plot the learning curves of a fitted estimator.

        Works with bpcore's estimators and scikit-learn's ``MLPClassifier`` /
        ``MLPRegressor`` fitted with ``solver="sgd"`` or ``"adam"``: the
        training loss is ``loss_curve_``; the validation score is
        ``validation_scores_`` (recorded with ``early_stopping=True``); an
        estimator with a ``history_`` (a ``bpcore.History``) adds its
        validation loss and learning rate.

        Parameters
        ----------
        estimator : estimator instance
            A fitted estimator with a ``loss_curve_`` or a ``history_``.
        ax : matplotlib.axes.Axes, default=None
            Axes to draw on; a new figure is created if None.
        name : str, default=None
            Title of the plot; the estimator's class name if None.

        Returns
        -------
        display : LossCurveDisplay

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> from sklearn.datasets import load_digits
        >>> from bpcore import MLPClassifier
        >>> from bpcore.plotting import LossCurveDisplay
        >>> X, y = load_digits(return_X_y=True)
        >>> clf = MLPClassifier(max_iter=5, early_stopping=True, random_state=0)
        >>> clf = clf.fit(X / 16, y)
        >>> display = LossCurveDisplay.from_estimator(clf)
        >>> len(display.line_.get_xdata()), display.val_score_line_ is not None
        (5, True)
        """
        _require_matplotlib("LossCurveDisplay.from_estimator")
        history = getattr(estimator, "history_", None)
        loss = getattr(estimator, "loss_curve_", None)
        if loss is None and history is not None:
            loss = getattr(history, "loss", None)
        if loss is None:
            raise ValueError(
                f"{type(estimator).__name__} has no learning curve to plot: it needs "
                "to be fitted with an iterative solver ('sgd' or 'adam'), which "
                "records loss_curve_; 'lbfgs' does not record one."
            )
        val_score = getattr(estimator, "validation_scores_", None)
        val_loss = learning_rate = None
        if history is not None:
            if val_score is None:
                val_score = getattr(history, "val_score", None)
            val_loss = getattr(history, "val_loss", None)
            learning_rate = getattr(history, "lr", None)
        return cls(
            loss=loss,
            val_loss=val_loss,
            val_score=val_score,
            learning_rate=learning_rate,
            name=type(estimator).__name__ if name is None else name,
        ).plot(ax=ax)

    @classmethod
    def from_history(
        cls, history: Any, *, ax: Axes | None = None, name: str | None = None
    ) -> LossCurveDisplay:
        """Plot the curves recorded in a ``bpcore.History``.

        Parameters
        ----------
        history : bpcore.History
            An object with per-epoch list attributes ``loss`` and, optionally,
            ``val_loss``, ``val_score`` and ``lr`` (empty lists are skipped).
        ax : matplotlib.axes.Axes, default=None
            Axes to draw on; a new figure is created if None.
        name : str, default=None
            Title of the plot.

        Returns
        -------
        display : LossCurveDisplay

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> from types import SimpleNamespace
        >>> from bpcore.plotting import LossCurveDisplay
        >>> history = SimpleNamespace(loss=[1.0, 0.6, 0.5], val_loss=[1.1, 0.8, 0.7],
        ...                           val_score=[], lr=[1e-3, 1e-3, 5e-4])
        >>> display = LossCurveDisplay.from_history(history)
        >>> display.val_score_line_ is None, display.lr_line_ is not None
        (True, True)
        """
        _require_matplotlib("LossCurveDisplay.from_history")
        if not hasattr(history, "loss"):
            raise TypeError(
                f"from_history expects a bpcore.History (with per-epoch lists loss, "
                f"val_loss, val_score, lr), got {type(history).__name__}."
            )
        return cls(
            loss=list(history.loss),
            val_loss=_as_list(getattr(history, "val_loss", None)),
            val_score=_as_list(getattr(history, "val_score", None)),
            learning_rate=_as_list(getattr(history, "lr", None)),
            name=name,
        ).plot(ax=ax)


def _panel_below(ax: Axes) -> Axes:
    """A new axes under ``ax``, sharing its x axis, taken from ``ax``'s own slot.

    A subplot's grid cell is split 3:1 (the figure's other axes keep their
    places); an axes placed by hand gets an inset along its bottom quarter.
    """
    spec = ax.get_subplotspec()
    if spec is None:
        return ax.inset_axes((0.0, -0.45, 1.0, 0.25), sharex=ax)
    grid = spec.subgridspec(2, 1, height_ratios=(3, 1), hspace=0.05)
    ax.set_subplotspec(grid[0])
    return ax.figure.add_subplot(grid[1], sharex=ax)


def _as_list(values: Sequence[float] | None) -> list[float] | None:
    return None if values is None else list(values)
