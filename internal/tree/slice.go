package tree

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// SlicePattern and BlockPattern are the patterns Tiled's server checks the
// slice and block query parameters against before parsing them
// (tiled/server/dependencies.py SLICE_REGEX and parse_block_param); a value
// that does not match is a 422 from request validation.
const (
	SlicePattern = `^(?:(?:-?\d+)?:){0,2}(?:-?\d+)?(?:,(?:(?:-?\d+)?:){0,2}(?:-?\d+)?)*$`
	BlockPattern = `^[0-9]*(,[0-9]+)*$`
)

// The patterns are compiled once; regexps are safe for
// concurrent use and never modified.
var (
	slicePatternRE = regexp.MustCompile(SlicePattern)
	blockPatternRE = regexp.MustCompile(BlockPattern)
)

// MatchesSlicePattern reports whether s passes Tiled's request validation
// for ?slice=.
func MatchesSlicePattern(s string) bool { return slicePatternRE.MatchString(s) }

// MatchesBlockPattern reports whether s passes Tiled's request validation
// for ?block=.
func MatchesBlockPattern(s string) bool { return blockPatternRE.MatchString(s) }

// Bound is an optional slice bound or step.
type Bound struct {
	V   int64
	Set bool
}

func bound(v int64) Bound { return Bound{V: v, Set: true} }

// Dim is one axis of a slice: an integer index (which drops the axis, as in
// numpy) or a range start:stop:step with optional parts.
type Dim struct {
	IsIndex           bool
	Index             int64
	Start, Stop, Step Bound
}

// Slice is Tiled's NDSlice: one Dim per leading axis; axes beyond its length
// are taken whole. The empty Slice selects everything.
type Slice []Dim

// The part patterns of Tiled's NDSlice.from_numpy_str, in its order.
var (
	partStartOnly     = regexp.MustCompile(`^(-?\d+)::?$`)
	partStopOnly      = regexp.MustCompile(`^:(-?\d+):?$`)
	partStartStopStep = regexp.MustCompile(`^(-?\d+):(-?\d+):(-?\d+)$`)
	partStartStop     = regexp.MustCompile(`^(-?\d+):(-?\d+):*$`)
	partStopStep      = regexp.MustCompile(`^:(-?\d+):(-?\d+)$`)
	partStepOnly      = regexp.MustCompile(`^::(-?\d+)$`)
	partStartStep     = regexp.MustCompile(`^(-?\d+)::(-?\d+)$`)
	partIndex         = regexp.MustCompile(`^(-?\d+)$`)
)

// ParseSlice parses Tiled's numpy-style slice string ("0:2,::3,-1"), as
// NDSlice.from_numpy_str does: surrounding brackets and spaces are ignored,
// "..." is not accepted here (the server's pattern excludes it). The error
// message is Tiled's ('Invalid slice part: ""'), which it answers with 400.
func ParseSlice(s string) (Slice, error) {
	s = strings.ReplaceAll(strings.Trim(s, "(][)"), " ", "")
	if s == "" {
		return Slice{}, nil
	}
	parts := strings.Split(s, ",")
	out := make(Slice, 0, len(parts))
	for _, part := range parts {
		d, err := parsePart(part)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

func parsePart(part string) (Dim, error) {
	ints := func(m []string) []int64 {
		v := make([]int64, len(m)-1)
		for i, s := range m[1:] {
			v[i] = parseSaturating(s)
		}
		return v
	}
	switch {
	case part == ":" || part == "::":
		return Dim{}, nil
	case partStartOnly.MatchString(part):
		v := ints(partStartOnly.FindStringSubmatch(part))
		return Dim{Start: bound(v[0])}, nil
	case partStopOnly.MatchString(part):
		v := ints(partStopOnly.FindStringSubmatch(part))
		return Dim{Stop: bound(v[0])}, nil
	case partStartStopStep.MatchString(part):
		v := ints(partStartStopStep.FindStringSubmatch(part))
		return Dim{Start: bound(v[0]), Stop: bound(v[1]), Step: bound(v[2])}, nil
	case partStartStop.MatchString(part):
		v := ints(partStartStop.FindStringSubmatch(part))
		return Dim{Start: bound(v[0]), Stop: bound(v[1])}, nil
	case partStopStep.MatchString(part):
		v := ints(partStopStep.FindStringSubmatch(part))
		return Dim{Stop: bound(v[0]), Step: bound(v[1])}, nil
	case partStepOnly.MatchString(part):
		v := ints(partStepOnly.FindStringSubmatch(part))
		return Dim{Step: bound(v[0])}, nil
	case partStartStep.MatchString(part):
		v := ints(partStartStep.FindStringSubmatch(part))
		return Dim{Start: bound(v[0]), Step: bound(v[1])}, nil
	case partIndex.MatchString(part):
		return Dim{IsIndex: true, Index: parseSaturating(part)}, nil
	}
	return Dim{}, fmt.Errorf("Invalid slice part: %q", part)
}

// parseSaturating parses a decimal integer of any length. Python's ints are
// unbounded; clamping keeps the meaning (a huge bound clamps to the axis, a
// huge index is out of range) without overflow. The lowest value is kept
// one above MinInt64 so that negating a step cannot overflow.
func parseSaturating(s string) int64 {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		if strings.HasPrefix(s, "-") {
			return math.MinInt64 + 1
		}
		return math.MaxInt64
	}
	if v == math.MinInt64 {
		v++
	}
	return v
}

// ParseBlock parses ?block= ("0,1") into chunk indices. Only digits and
// commas pass BlockPattern, so every part is a non-negative integer or
// empty; an empty part gives Tiled's 'Invalid slice part: ""'.
func ParseBlock(s string) ([]int64, error) {
	sl, err := ParseSlice(s)
	if err != nil {
		return nil, err
	}
	out := make([]int64, len(sl))
	for i, d := range sl {
		if !d.IsIndex {
			return nil, fmt.Errorf("Invalid block part: %s", d.pyRepr())
		}
		out[i] = d.Index
	}
	return out, nil
}

// Errors of applying a slice to a shape. Tiled answers numpy's IndexError
// with 400 "Block index out of range"; a zero step is numpy's ValueError.
var (
	ErrIndexOutOfRange = errors.New("index out of range")
	ErrZeroStep        = errors.New("slice step cannot be zero")
)

// axis is a resolved selection along one axis of the source: n elements
// from start in steps of step; drop is set for an integer index.
type axis struct {
	start, step, n int64
	drop           bool
}

// resolve applies s to shape with numpy's rules (Python's slice.indices
// for ranges, negative indices counted from the end).
func (s Slice) resolve(shape []int) ([]axis, error) {
	if len(s) > len(shape) {
		return nil, fmt.Errorf("%w: %d indices for %d dimensions", ErrIndexOutOfRange, len(s), len(shape))
	}
	out := make([]axis, len(shape))
	for i, length := range shape {
		if i >= len(s) {
			out[i] = axis{start: 0, step: 1, n: int64(length)}
			continue
		}
		a, err := s[i].resolve(int64(length))
		if err != nil {
			return nil, err
		}
		out[i] = a
	}
	return out, nil
}

func (d Dim) resolve(length int64) (axis, error) {
	if d.IsIndex {
		idx := d.Index
		if idx < 0 {
			idx += length
		}
		if idx < 0 || idx >= length {
			return axis{}, fmt.Errorf("%w: index %d for an axis of length %d", ErrIndexOutOfRange, d.Index, length)
		}
		return axis{start: idx, step: 1, n: 1, drop: true}, nil
	}
	step := int64(1)
	if d.Step.Set {
		step = d.Step.V
	}
	if step == 0 {
		return axis{}, ErrZeroStep
	}
	lower, upper := int64(0), length
	if step < 0 {
		lower, upper = -1, length-1
	}
	clamp := func(b Bound, def int64) int64 {
		if !b.Set {
			return def
		}
		v := b.V
		if v < 0 {
			v += length
			if v < lower {
				v = lower
			}
		} else if v > upper {
			v = upper
		}
		return v
	}
	var start, stop int64
	if step > 0 {
		start, stop = clamp(d.Start, lower), clamp(d.Stop, upper)
	} else {
		start, stop = clamp(d.Start, upper), clamp(d.Stop, lower)
	}
	var n int64
	switch {
	case step > 0 && start < stop:
		n = (stop-start-1)/step + 1
	case step < 0 && start > stop:
		n = (start-stop-1)/(-step) + 1
	}
	return axis{start: start, step: step, n: n}, nil
}

// ShapeAfter is the shape that s selects from shape.
func (s Slice) ShapeAfter(shape []int) ([]int, error) {
	axes, err := s.resolve(shape)
	if err != nil {
		return nil, err
	}
	return keptShape(axes), nil
}

func keptShape(axes []axis) []int {
	out := []int{}
	for _, a := range axes {
		if !a.drop {
			out = append(out, int(a.n))
		}
	}
	return out
}

// PyRepr is Python's repr of the NDSlice (a tuple of ints and slice
// objects), which Tiled puts in its error messages.
func (s Slice) PyRepr() string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = d.pyRepr()
	}
	return pyTuple(parts)
}

func (d Dim) pyRepr() string {
	if d.IsIndex {
		return strconv.FormatInt(d.Index, 10)
	}
	f := func(b Bound) string {
		if !b.Set {
			return "None"
		}
		return strconv.FormatInt(b.V, 10)
	}
	return fmt.Sprintf("slice(%s, %s, %s)", f(d.Start), f(d.Stop), f(d.Step))
}

// PyTuple formats integers as a Python tuple: "()", "(5,)", "(2, 3)".
func PyTuple[T int | int64](v []T) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = strconv.FormatInt(int64(x), 10)
	}
	return pyTuple(parts)
}

func pyTuple(parts []string) string {
	if len(parts) == 1 {
		return "(" + parts[0] + ",)"
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// PyChunks formats chunks as Python's repr of a tuple of tuples.
func PyChunks(chunks [][]int) string {
	parts := make([]string, len(chunks))
	for i, c := range chunks {
		parts[i] = PyTuple(c)
	}
	return pyTuple(parts)
}
