package tree

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// FromDirectory serves a directory the way `tiled serve directory` does:
// sub-directories are containers, .csv files are tables and .npy files are
// arrays, keyed by the file name without its suffixes ("run.1.csv" is
// "run"), which is Tiled's default key_from_filename (strip_suffixes).
//
// Hidden files are ignored, as by Tiled's default filter. Other files are
// skipped with an Info log line. A file that cannot be read is skipped with
// a Warn line and does not stop the scan. When several files would get the
// same key, all of them are skipped and the collision logged, as Tiled does
// ("COLLISION: Multiple files would result in node at ...") rather than
// letting one silently win.
//
// Headers are read and validated now; the data is read on each request.
func FromDirectory(dir string, logger *slog.Logger) (Container, error) {
	return scanDirectory(dir, logger, false)
}

func scanDirectory(dir string, logger *slog.Logger, keepExt bool) (Container, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("serve directory: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("serve directory: %s is not a directory", dir)
	}
	s := &scanner{logger: logger, keepExt: keepExt, active: map[string]bool{}}
	return s.scan(dir)
}

type scanner struct {
	logger  *slog.Logger
	keepExt bool
	// active holds the resolved paths of the directories being scanned, so
	// that a symbolic link back to an ancestor is not followed forever.
	active map[string]bool
}

type candidate struct {
	path string
	node Node
}

func (s *scanner) scan(dir string) (*Map, error) {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, err
	}
	s.active[real] = true
	defer delete(s.active, real)

	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var order []string
	byKey := map[string][]candidate{}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		path := filepath.Join(dir, name)
		node := s.node(path)
		if node == nil {
			continue
		}
		key := name
		if !s.keepExt {
			key = stripSuffixes(name)
		}
		if _, seen := byKey[key]; !seen {
			order = append(order, key)
		}
		byKey[key] = append(byKey[key], candidate{path, node})
	}
	var kept []Entry
	for _, key := range order {
		cands := byKey[key]
		if len(cands) > 1 {
			paths := make([]string, len(cands))
			for i, c := range cands {
				paths[i] = c.path
			}
			for _, c := range cands {
				s.logger.Warn("skipping file: several files would be served under the same key",
					"path", c.path, "key", key, "colliding", paths)
			}
			continue
		}
		kept = append(kept, Entry{Key: key, Node: cands[0].node})
	}
	return NewMap(Info{}, kept...)
}

// node returns the node for one directory entry, or nil (having logged
// why) when it is skipped.
func (s *scanner) node(path string) Node {
	fi, err := os.Stat(path) // follows symbolic links, as Tiled's walk does
	if err != nil {
		s.logger.Warn("skipping file: cannot stat it", "path", path, "error", err)
		return nil
	}
	if fi.IsDir() {
		real, err := filepath.EvalSymlinks(path)
		if err != nil {
			s.logger.Warn("skipping directory: cannot resolve it", "path", path, "error", err)
			return nil
		}
		if s.active[real] {
			s.logger.Warn("skipping directory: symbolic link loop", "path", path)
			return nil
		}
		m, err := s.scan(path)
		if err != nil {
			s.logger.Warn("skipping directory: cannot read it", "path", path, "error", err)
			return nil
		}
		return m
	}
	if !fi.Mode().IsRegular() {
		s.logger.Info("skipping file: not a regular file", "path", path)
		return nil
	}
	var n Node
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv":
		n, err = openCSV(path)
	case ".npy":
		n, err = openNPY(path)
	default:
		s.logger.Info("skipping file: no adapter for its type", "path", path)
		return nil
	}
	if err != nil {
		s.logger.Warn("skipping file: cannot read it", "path", path, "error", err)
		return nil
	}
	return n
}

// stripSuffixes is Tiled's strip_suffixes: the name without every suffix
// pathlib sees ("thing.tar.gz" is "thing"; a name ending in "." has none).
func stripSuffixes(name string) string {
	if strings.HasSuffix(name, ".") {
		return name
	}
	parts := strings.Split(strings.TrimLeft(name, "."), ".")
	cut := 0
	for _, p := range parts[1:] {
		cut += 1 + len(p)
	}
	return name[:len(name)-cut]
}
