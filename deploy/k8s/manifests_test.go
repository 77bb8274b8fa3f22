// Package k8s holds the Kubernetes manifests; this test keeps them honest
// without a cluster: every document parses, references resolve, probes hit
// the real probe routes, and the embedded Tiled config loads with the
// server's own loader.
package k8s

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/tiledgo/server/internal/config"
)

type doc = map[string]any

func load(t *testing.T) map[string][]doc {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	byKind := map[string][]doc{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var d doc
			if err := dec.Decode(&d); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			for _, k := range []string{"apiVersion", "kind"} {
				if s, _ := d[k].(string); s == "" {
					t.Errorf("%s: a document lacks %s", f, k)
				}
			}
			if name(d) == "" {
				t.Errorf("%s: a %v lacks metadata.name", f, d["kind"])
			}
			kind, _ := d["kind"].(string)
			byKind[kind] = append(byKind[kind], d)
		}
	}
	return byKind
}

// get walks a path of map keys and list indexes.
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func name(d doc) string { s, _ := get(d, "metadata", "name").(string); return s }

func names(docs []doc) []string {
	var out []string
	for _, d := range docs {
		out = append(out, name(d))
	}
	return out
}

// podSpecs returns every pod template's spec, by owner.
func podSpecs(byKind map[string][]doc) map[string]any {
	out := map[string]any{}
	for _, d := range byKind["Deployment"] {
		out["Deployment/"+name(d)] = get(d, "spec", "template", "spec")
	}
	for _, d := range byKind["Job"] {
		out["Job/"+name(d)] = get(d, "spec", "template", "spec")
	}
	for _, d := range byKind["CronJob"] {
		out["CronJob/"+name(d)] = get(d, "spec", "jobTemplate", "spec", "template", "spec")
	}
	return out
}

func TestManifests(t *testing.T) {
	byKind := load(t)
	for _, kind := range []string{"Deployment", "Service", "ConfigMap", "Secret", "Job", "CronJob", "PodDisruptionBudget"} {
		if len(byKind[kind]) == 0 {
			t.Errorf("no %s", kind)
		}
	}
	secrets, configMaps := names(byKind["Secret"]), names(byKind["ConfigMap"])

	for owner, spec := range podSpecs(byKind) {
		containers, _ := get(spec, "containers").([]any)
		if len(containers) == 0 {
			t.Errorf("%s: no containers", owner)
		}
		for _, c := range containers {
			args, _ := get(c, "args").([]any)
			if cmd, _ := get(args, 0).(string); !slices.Contains([]string{"serve", "migrate", "gc"}, cmd) {
				t.Errorf("%s: args %v do not start with a server command", owner, args)
			}
			for _, ef := range get(c, "envFrom").([]any) {
				if ref, _ := get(ef, "secretRef", "name").(string); !slices.Contains(secrets, ref) {
					t.Errorf("%s: envFrom names Secret %q, not defined here", owner, ref)
				}
			}
		}
		vols, _ := get(spec, "volumes").([]any)
		for _, v := range vols {
			if cm, ok := get(v, "configMap", "name").(string); ok && !slices.Contains(configMaps, cm) {
				t.Errorf("%s: volume uses ConfigMap %q, not defined here", owner, cm)
			}
		}
	}

	for _, d := range byKind["Deployment"] {
		labels := get(d, "spec", "template", "metadata", "labels").(map[string]any)
		for k, v := range get(d, "spec", "selector", "matchLabels").(map[string]any) {
			if labels[k] != v {
				t.Errorf("Deployment %s: selector %s=%v does not match the pod labels", name(d), k, v)
			}
		}
		c := get(d, "spec", "template", "spec", "containers", 0)
		for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz"} {
			if got := get(c, probe, "httpGet", "path"); got != path {
				t.Errorf("Deployment %s: %s hits %v, want %s", name(d), probe, got, path)
			}
		}
		// The config file the server is told to read is the one mounted.
		args := get(c, "args").([]any)
		mount, _ := get(c, "volumeMounts", 0, "mountPath").(string)
		if len(args) < 3 || args[1] != "config" || !strings.HasPrefix(args[2].(string), mount+"/") {
			t.Errorf("Deployment %s: serves %v but mounts the config at %q", name(d), args, mount)
		}
	}
	for _, s := range byKind["Service"] {
		sel := get(s, "spec", "selector").(map[string]any)
		var matched bool
		for _, d := range byKind["Deployment"] {
			labels := get(d, "spec", "template", "metadata", "labels").(map[string]any)
			ok := true
			for k, v := range sel {
				ok = ok && labels[k] == v
			}
			matched = matched || ok
		}
		if !matched {
			t.Errorf("Service %s selects no Deployment's pods", name(s))
		}
	}
}

// TestEmbeddedConfig loads the ConfigMap's config.yml exactly as serve
// would, with the Secret's variables in the environment.
func TestEmbeddedConfig(t *testing.T) {
	byKind := load(t)
	env := map[string]string{}
	for _, s := range byKind["Secret"] {
		for k, v := range get(s, "stringData").(map[string]any) {
			env[k] = v.(string)
		}
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for _, cm := range byKind["ConfigMap"] {
		src, ok := get(cm, "data", "config.yml").(string)
		if !ok {
			t.Fatalf("ConfigMap %s has no config.yml", name(cm))
		}
		c, err := config.LoadBytes("configmap/"+name(cm)+"/config.yml", []byte(src), lookup)
		if err == nil {
			err = c.ApplyEnv(lookup)
		}
		if err == nil {
			c.ApplyFlags(config.Flags{Scalable: ptr(true)})
			err = c.Finalize()
		}
		if err != nil {
			t.Fatalf("the deployed config does not load (as serve --scalable would):\n%v", err)
		}
		if c.Authentication.SingleUser() || c.Database.Driver != config.DriverPostgres {
			t.Fatalf("the deployed config should be multi-user on PostgreSQL: %+v", c.Database)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// TestComposeConfig loads deploy/compose/config.yml with the environment
// docker-compose.yml gives the replicas, as serve config would.
func TestComposeConfig(t *testing.T) {
	b, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var compose doc
	if err := yaml.Unmarshal(b, &compose); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for k, v := range get(compose, "services", "tiled-a", "environment").(map[string]any) {
		env[k] = v.(string)
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	c, err := config.Build([]string{"../compose/config.yml"}, lookup, config.Flags{Scalable: ptr(true)})
	if err != nil {
		t.Fatalf("the compose config does not load:\n%v", err)
	}
	if c.Database.Driver != config.DriverPostgres || len(c.Authentication.SecretKeys) == 0 {
		t.Fatalf("compose replicas must share PostgreSQL and secret keys: %+v", c.Database)
	}
}
