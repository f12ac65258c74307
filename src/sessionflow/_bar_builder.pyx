# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""Builds the per-bar objects of a columnar batch in C, one as each is taken.

A per-bar consumer is handed one ``Bar`` (and its ``BarEvent``/``DerivedBarEvent``)
per delivered bar. Built in Python - ``tolist`` of every column, ``zip`` and
``tuple.__new__`` - that was most of the per-bar replay's cost over the columnar one
(issue 23, item 2). Here each object is allocated the way ``tuple.__new__`` does it for
a tuple subclass (the type's ``tp_alloc``) and its fields are set from the columns, so
a consumer gets the same NamedTuple types with the same values (Python floats and ints,
the shared tz-aware datetime, the same bool singletons) and can drop each at once.
Leaf module: it imports nothing from sessionflow, the callers pass the types.
"""

from cpython.long cimport PyLong_FromLongLong
from cpython.ref cimport PyObject
from libc.stdint cimport int64_t, uint8_t


cdef extern from *:
    """
    /* From 3.14 a tuple caches its hash (ob_hash, -1 = not computed): a new or
       rewritten tuple must say "not computed", as tuple.__new__ and zip do. */
    #if PY_VERSION_HEX >= 0x030E0000
    #define SF_FORGET_HASH(t) (((PyTupleObject *)(t))->ob_hash = -1)
    #else
    #define SF_FORGET_HASH(t) ((void)0)
    #endif

    static PyObject *sf_alloc_tuple(PyObject *type, Py_ssize_t n) {
        /* what tuple.__new__ does for a subclass: the type's allocator, slots set after */
        PyTypeObject *tp = (PyTypeObject *)type;
        PyObject *t = tp->tp_alloc(tp, n);
        if (t != NULL) {
            SF_FORGET_HASH(t);
        }
        return t;
    }

    static void sf_set(PyObject *tup, Py_ssize_t i, PyObject *value) {
        /* slot i := value (a new reference to it taken), dropping what was there */
        PyObject *old = PyTuple_GET_ITEM(tup, i);
        Py_INCREF(value);
        PyTuple_SET_ITEM(tup, i, value);
        SF_FORGET_HASH(tup);
        Py_XDECREF(old);
    }

    static int sf_only_ref(PyObject *o);

    static int sf_set_float(PyObject *tup, Py_ssize_t i, double value) {
        /* slot i := a float of value: the float already there rewritten when only this
           tuple holds it (PyFloat_FromDouble never shares one), else a new one */
        PyObject *old = PyTuple_GET_ITEM(tup, i);
        PyObject *f;
        SF_FORGET_HASH(tup);
        if (old != NULL && PyFloat_CheckExact(old) && sf_only_ref(old)) {
            ((PyFloatObject *)old)->ob_fval = value;
            return 0;
        }
        f = PyFloat_FromDouble(value);
        if (f == NULL) {
            return -1;
        }
        PyTuple_SET_ITEM(tup, i, f);
        Py_XDECREF(old);
        return 0;
    }

    /* Whether this loop's reference is the only one. Never on a free-threaded build,
       where the count alone does not tell (zip asks the runtime there). */
    static int sf_only_ref(PyObject *o) {
    #ifdef Py_GIL_DISABLED
        return 0;
    #else
        return Py_REFCNT(o) == 1;
    #endif
    }

    static int sf_item_only_ref(PyObject *tup, Py_ssize_t i) {
        return sf_only_ref(PyTuple_GET_ITEM(tup, i));
    }
    """
    object sf_alloc_tuple(object type, Py_ssize_t n)
    void sf_set(object tup, Py_ssize_t i, object value) noexcept
    bint sf_only_ref(object o) noexcept
    bint sf_item_only_ref(object tup, Py_ssize_t i) noexcept
    int sf_set_float(object tup, Py_ssize_t i, double value) except -1
    PyObject *PyTuple_GET_ITEM(object tup, Py_ssize_t i) noexcept


cdef class BarRows:
    """Iterator over a batch's rows as ``bar_type`` tuples, or as ``event_type`` tuples
    ``(bar, time, *tail)`` when an event type is given; each built when taken.

    ``ts``: each row's open in epoch microseconds, turned into datetimes by ``from_us``
    once per distinct value (rows with one open share one datetime, so a replay slice
    makes one). ``bar_type`` must be a tuple subclass of 10 fields (``models.Bar``),
    ``event_type`` one of ``2 + len(tail)``; both are checked when the iterator is made.
    """

    cdef object bar_type, event_type, time, tail
    cdef object stamp
    cdef list stamps, symbols
    cdef object minutes, filled
    cdef const double[:] open, high, low, close
    cdef const int64_t[:] volume
    cdef const uint8_t[:] regular
    cdef Py_ssize_t i, n, n_tail, n_event

    def __init__(
        self,
        bar_type,
        list symbols,
        const int64_t[:] ts,
        from_us,
        const double[:] open,
        const double[:] high,
        const double[:] low,
        const double[:] close,
        const int64_t[:] volume,
        const uint8_t[:] regular,
        minutes,
        filled,
        event_type=None,
        time=None,
        tuple tail=(),
    ):
        n = len(symbols)
        if not (
            ts.shape[0] == open.shape[0] == high.shape[0] == low.shape[0] == close.shape[0]
            == volume.shape[0] == regular.shape[0] == n
        ):
            raise ValueError("columns of different lengths")
        if not (isinstance(bar_type, type) and issubclass(bar_type, tuple)):
            raise TypeError(f"{bar_type!r} is not a tuple type")
        if len(bar_type._fields) != 10:
            raise TypeError(f"{bar_type!r} does not have the 10 fields of a bar")
        if event_type is not None:
            if not (isinstance(event_type, type) and issubclass(event_type, tuple)):
                raise TypeError(f"{event_type!r} is not a tuple type")
            if len(event_type._fields) != 2 + len(tail):
                raise TypeError(f"{event_type!r} does not have {2 + len(tail)} fields")
        self._stamp(ts, from_us, n)
        self.bar_type, self.event_type, self.time, self.tail = bar_type, event_type, time, tail
        self.symbols = symbols
        self.open, self.high, self.low, self.close = open, high, low, close
        self.volume, self.regular = volume, regular
        self.minutes, self.filled = minutes, filled
        self.i, self.n, self.n_tail = 0, n, len(tail)
        self.n_event = 2 + self.n_tail

    cdef _stamp(self, const int64_t[:] ts, from_us, Py_ssize_t n):
        cdef Py_ssize_t i
        cdef int64_t first
        cdef dict seen
        if n == 0:
            return
        first = ts[0]
        for i in range(1, n):
            if ts[i] != first:
                break
        else:  # a replay slice: one instant
            self.stamp = from_us(first)
            return
        seen = {}
        self.stamps = []
        for i in range(n):
            key = ts[i]
            stamp = seen.get(key)
            if stamp is None:
                stamp = seen[key] = from_us(key)
            self.stamps.append(stamp)

    def __iter__(self):
        return self

    def __length_hint__(self):
        return self.n - self.i

    cdef object _bar(self, Py_ssize_t i, object bar):
        """Row ``i`` as a bar: into ``bar`` (one nobody else holds) or a new one."""
        if bar is None:
            bar = sf_alloc_tuple(self.bar_type, 10)
        sf_set(bar, 0, self.symbols[i])
        sf_set(bar, 1, self.stamp if self.stamps is None else self.stamps[i])
        sf_set_float(bar, 2, self.open[i])
        sf_set_float(bar, 3, self.high[i])
        sf_set_float(bar, 4, self.low[i])
        sf_set_float(bar, 5, self.close[i])
        sf_set(bar, 6, PyLong_FromLongLong(self.volume[i]))
        sf_set(bar, 7, self.minutes)
        sf_set(bar, 8, self.filled)
        sf_set(bar, 9, True if self.regular[i] else False)
        return bar

    cdef object _event(self, object bar):
        cdef Py_ssize_t k
        event = sf_alloc_tuple(self.event_type, self.n_event)
        sf_set(event, 0, bar)
        sf_set(event, 1, self.time)
        for k in range(self.n_tail):
            sf_set(event, 2 + k, self.tail[k])
        return event

    def __next__(self):
        cdef Py_ssize_t i = self.i
        if i >= self.n:
            raise StopIteration
        self.i = i + 1
        bar = self._bar(i, None)
        return bar if self.event_type is None else self._event(bar)

    def feed(self, callback):
        """``callback(row)`` for each row not yet taken, in order; what it raises propagates.

        The loop runs here, so between two calls only this holds the last row: when the
        callback kept no reference to it (the object's only reference is this loop's, as
        ``zip`` checks before reusing its result tuple), the next row is written into the
        same objects instead of new ones: the event, its bar and the bar's four price
        floats, each only when nothing else holds it. What the callback kept (a row, a
        bar, a price) is never touched again.
        """
        cdef Py_ssize_t i
        row = None
        while self.i < self.n:
            i = self.i
            self.i = i + 1
            if self.event_type is None:
                row = self._bar(i, row if row is not None and sf_only_ref(row) else None)
            elif row is not None and sf_only_ref(row):  # the event is free again
                if sf_item_only_ref(row, 0):  # and so is its bar
                    sf_set(row, 0, self._bar(i, <object>PyTuple_GET_ITEM(row, 0)))
                else:
                    sf_set(row, 0, self._bar(i, None))
            else:
                row = self._event(self._bar(i, None))
            callback(row)
