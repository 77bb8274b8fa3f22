package config

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

var errDurationRange = errors.New("duration out of range (at most about 290 years)")

func secondsToDuration(secs float64) (time.Duration, error) {
	if math.IsNaN(secs) || math.IsInf(secs, 0) {
		return 0, errors.New("expected a finite number of seconds")
	}
	ns := secs * float64(time.Second)
	if math.Abs(ns) >= math.MaxInt64 {
		return 0, errDurationRange
	}
	return time.Duration(ns), nil
}

// iso8601 is the subset of ISO 8601 durations without years and months
// (whose length varies): PnW, PnDTnHnMnS.
var iso8601 = regexp.MustCompile(`^P(?:(\d+(?:\.\d+)?)W)?(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$`)

// parseDuration reads a duration given as text: seconds ("900", what an
// environment variable holds in Tiled), a Go duration ("15m", "168h") or
// an ISO 8601 duration ("PT15M").
func parseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if secs, err := strconv.ParseFloat(t, 64); err == nil {
		return secondsToDuration(secs)
	}
	if v, err := time.ParseDuration(t); err == nil {
		return v, nil
	}
	if m := iso8601.FindStringSubmatch(strings.ToUpper(t)); m != nil && t != "P" && !strings.HasSuffix(strings.ToUpper(t), "T") {
		units := []float64{7 * 24 * 3600, 24 * 3600, 3600, 60, 1}
		var secs float64
		for i, u := range units {
			if m[i+1] != "" {
				n, _ := strconv.ParseFloat(m[i+1], 64)
				secs += n * u
			}
		}
		return secondsToDuration(secs)
	}
	return 0, fmt.Errorf("expected a duration: seconds (900), a Go duration (\"15m\", \"168h\") or ISO 8601 (\"PT15M\")")
}
