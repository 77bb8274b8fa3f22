package serialize

import (
	"math"
	"strconv"
	"strings"
)

// shortest returns the shortest decimal digits that round-trip v at the
// given precision (32 or 64 bits) and decpt, the position of the decimal
// point: v = 0.DIGITS × 10^decpt. v must be finite and non-zero.
func shortest(v float64, bitSize int) (digits string, decpt int) {
	s := strconv.FormatFloat(math.Abs(v), 'e', -1, bitSize) // d.ddde±XX
	mant, exp, _ := strings.Cut(s, "e")
	e, _ := strconv.Atoi(exp)
	digits = strings.Replace(mant, ".", "", 1)
	return digits, e + 1
}

// PyFloat formats v as Python's repr(float) and numpy's str(float64) do —
// the two agree — which is how pandas writes floats to CSV and numpy's
// savetxt("%s") writes array elements: the shortest round-trip digits,
// positional for 1e-4 <= |v| < 1e16 with at least one decimal ("1.0"),
// scientific otherwise with a signed exponent of at least two digits
// ("1e+16", "1.5e-05"). bitSize 32 gives numpy's float32 digits.
func PyFloat(v float64, bitSize int) string {
	switch {
	case math.IsNaN(v):
		return "nan"
	case math.IsInf(v, 1):
		return "inf"
	case math.IsInf(v, -1):
		return "-inf"
	case v == 0:
		if math.Signbit(v) {
			return "-0.0"
		}
		return "0.0"
	}
	digits, decpt := shortest(v, bitSize)
	sign := ""
	if v < 0 {
		sign = "-"
	}
	if decpt > -4 && decpt <= 16 {
		return sign + positional(digits, decpt)
	}
	exp := decpt - 1
	es := "+"
	if exp < 0 {
		es, exp = "-", -exp
	}
	e := strconv.Itoa(exp)
	if len(e) < 2 {
		e = "0" + e
	}
	return sign + mantissa(digits) + "e" + es + e
}

// JSONFloat formats v as orjson does (it uses the ryu algorithm's "pretty"
// layout): shortest round-trip digits, positional with at least one decimal
// when the decimal point falls within the first 16 digits (13 for float32)
// or up to 5 places left of them, else scientific with an unsigned, unpadded
// exponent ("1e16", "1.5e-7"). orjson writes NaN and infinities as null.
func JSONFloat(v float64, bitSize int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "null"
	}
	if v == 0 {
		if math.Signbit(v) {
			return "-0.0"
		}
		return "0.0"
	}
	limit := 16
	if bitSize == 32 {
		limit = 13
	}
	digits, kk := shortest(v, bitSize)
	sign := ""
	if v < 0 {
		sign = "-"
	}
	if kk > -5 && kk <= limit {
		return sign + positional(digits, kk)
	}
	return sign + mantissa(digits) + "e" + strconv.Itoa(kk-1)
}

// positional writes digits with the decimal point at decpt, always with a
// fractional part.
func positional(digits string, decpt int) string {
	switch {
	case decpt <= 0:
		return "0." + strings.Repeat("0", -decpt) + digits
	case decpt >= len(digits):
		return digits + strings.Repeat("0", decpt-len(digits)) + ".0"
	default:
		return digits[:decpt] + "." + digits[decpt:]
	}
}

func mantissa(digits string) string {
	if len(digits) == 1 {
		return digits
	}
	return digits[:1] + "." + digits[1:]
}
