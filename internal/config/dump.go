package config

import (
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Redacted returns the effective configuration as YAML with every secret
// replaced by REDACTED and database passwords hidden, for
// "check-config --print".
func (c *Config) Redacted() string {
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(dumpNode(reflect.ValueOf(*c), "")); err != nil {
		// Encoding a tree of plain nodes does not fail; say so if it does.
		return fmt.Sprintf("# cannot print configuration: %v\n", err)
	}
	return b.String()
}

var (
	stringerType = reflect.TypeFor[fmt.Stringer]()
	durationType = reflect.TypeFor[time.Duration]()
	prefixType   = reflect.TypeFor[netip.Prefix]()
)

func scalarNode(tag, value string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: value}
}

// dumpNode renders v; Secret and DSN print through their String methods,
// which redact, and free-form maps (tree and policy args) are redacted by
// key name and URL password.
func dumpNode(v reflect.Value, dumpTag string) *yaml.Node {
	if v.Type() == durationType {
		if v.Int() == 0 && dumpTag == "unlimited" {
			return scalarNode("!!null", "null")
		}
		return scalarNode("!!str", time.Duration(v.Int()).String())
	}
	if v.Type() == prefixType || v.Kind() != reflect.Struct && v.Kind() != reflect.Pointer && v.Type().Implements(stringerType) {
		return scalarNode("!!str", v.Interface().(fmt.Stringer).String())
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return scalarNode("!!null", "null")
		}
		return dumpNode(v.Elem(), dumpTag)
	case reflect.Struct:
		n := &yaml.Node{Kind: yaml.MappingNode}
		t := v.Type()
		for i := range t.NumField() {
			sf := t.Field(i)
			name, opts, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
			if !sf.IsExported() || name == "-" || name == "" {
				continue
			}
			fv := v.Field(i)
			if opts == "omitempty" && fv.IsZero() {
				continue
			}
			n.Content = append(n.Content, scalarNode("!!str", name), dumpNode(fv, sf.Tag.Get("dump")))
		}
		return n
	case reflect.Slice:
		n := &yaml.Node{Kind: yaml.SequenceNode}
		for i := range v.Len() {
			n.Content = append(n.Content, dumpNode(v.Index(i), ""))
		}
		return n
	case reflect.Map:
		n := &yaml.Node{Kind: yaml.MappingNode}
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		for _, k := range keys {
			val := v.MapIndex(k)
			if v.Type().Elem().Kind() == reflect.Interface {
				val = reflect.ValueOf(redactFree(k.String(), val.Interface()))
				if !val.IsValid() {
					n.Content = append(n.Content, scalarNode("!!str", k.String()), scalarNode("!!null", "null"))
					continue
				}
			}
			n.Content = append(n.Content, scalarNode("!!str", k.String()), dumpNode(val, ""))
		}
		return n
	case reflect.String:
		return scalarNode("!!str", v.String())
	case reflect.Bool:
		return scalarNode("!!bool", strconv.FormatBool(v.Bool()))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return scalarNode("!!int", strconv.FormatInt(v.Int(), 10))
	case reflect.Float32, reflect.Float64:
		return scalarNode("!!float", strconv.FormatFloat(v.Float(), 'g', -1, 64))
	}
	return scalarNode("!!str", fmt.Sprint(v.Interface()))
}

// secretishKeys mark free-form values that are probably credentials.
var secretishKeys = []string{"password", "secret", "token", "credential", "private"}

func redactFree(key string, v any) any {
	lk := strings.ToLower(key)
	switch x := v.(type) {
	case string:
		for _, s := range secretishKeys {
			if strings.Contains(lk, s) {
				return redactedOrEmpty(x)
			}
		}
		if strings.Contains(x, "://") {
			return redactURL(x)
		}
		return x
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = redactFree(k, e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = redactFree(key, e)
		}
		return out
	}
	return v
}

// LogValue summarises the configuration for a start-up log line, without
// secrets.
func (c *Config) LogValue() slog.Value {
	providers := make([]string, len(c.Authentication.Providers))
	for i, p := range c.Authentication.Providers {
		providers[i] = p.Name + ":" + p.Kind.String()
	}
	trees := make([]string, len(c.Trees))
	for i, t := range c.Trees {
		trees[i] = t.Path + "=" + t.Tree
	}
	return slog.GroupValue(
		slog.Any("sources", c.Sources),
		slog.Bool("single_user", c.SingleUser()),
		slog.Bool("resource_server", c.Auth.Enabled),
		slog.Bool("allow_anonymous_access", c.Authentication.AllowAnonymousAccess),
		slog.Any("providers", providers),
		slog.Any("trees", trees),
		slog.Any("database", c.Database),
		slog.Bool("scalable", c.Server.Scalable),
	)
}

// LogValue describes the database without its password.
func (db Database) LogValue() slog.Value {
	if db.Driver == DriverNone {
		return slog.StringValue("none")
	}
	return slog.GroupValue(
		slog.String("driver", string(db.Driver)),
		slog.String("uri", db.URI.String()),
		slog.Int("pool_size", db.PoolSize),
	)
}
