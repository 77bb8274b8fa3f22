package config

import (
	"fmt"
	"sort"
	"strings"
)

// Problem is one thing wrong with the configuration. File names the source
// ("config.yml", "environment", "flags"); Line is 1-based and 0 when unknown;
// Path is the key path ("authentication.providers[0].args").
type Problem struct {
	File string
	Line int
	Path string
	Msg  string
}

func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d", p.Line)
		}
		b.WriteString(": ")
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Errors is every problem found, reported together so that one run of
// check-config shows them all (as oauth2-proxy's validation does).
type Errors struct {
	Problems []Problem
}

// Error prints one problem per line.
func (e *Errors) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// collector gathers problems in the order the sources were read.
type collector struct {
	probs []Problem
	// order ranks sources so that problems sort by file, then by line.
	order map[string]int
}

func (c *collector) add(p Problem) {
	if c.order == nil {
		c.order = map[string]int{}
	}
	if _, ok := c.order[p.File]; !ok {
		c.order[p.File] = len(c.order)
	}
	c.probs = append(c.probs, p)
}

func (c *collector) addf(file string, line int, path, format string, args ...any) {
	c.add(Problem{File: file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// err returns nil when nothing was found, else *Errors sorted by source and
// line (decoders visit keys in code order, people read files top down).
func (c *collector) err() error {
	if len(c.probs) == 0 {
		return nil
	}
	out := append([]Problem(nil), c.probs...)
	sort.SliceStable(out, func(i, j int) bool {
		oi, oj := c.order[out[i].File], c.order[out[j].File]
		if oi != oj {
			return oi < oj
		}
		return out[i].Line < out[j].Line
	})
	return &Errors{Problems: out}
}
