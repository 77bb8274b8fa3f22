// Package k8s holds the Kubernetes manifests; these tests keep them honest
// without a cluster. Every document is decoded strictly into the k8s.io/api
// types (an unknown or misspelt field fails, as the API server would refuse
// it), the kustomizations are built with kustomize's own library, references
// resolve (Secret, ConfigMap, Service selectors and ports, the autoscaler's
// target, probe paths and ports, the metrics port the annotations name), the
// security context holds everywhere, and the embedded Tiled config loads
// with the server's own loader.
package k8s

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/api/krusty"
	kustypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/tiledgo/server/internal/config"
)

// Layout of this directory: the base is every manifest here but the
// kustomization itself and the example Secret; monitoring/ is optional.
const (
	kustomizationFile = "kustomization.yaml"
	secretExample     = "secret.example.yaml"
	monitoringDir     = "monitoring"
	// metricsPath is where the --metrics-addr listener serves
	// (cmd/server/metricsserver.go).
	metricsPath = "/metrics"
	// telemetryFlush is how long serve gives itself to flush traces after
	// the HTTP server has shut down (cmd/server/serve.go).
	telemetryFlush = 5 * time.Second
)

// decoder is the API machinery's own strict decoder: unknown fields,
// duplicate fields and fields in the wrong case are errors, and only kinds
// registered here decode at all.
var decoder = func() runtime.Decoder {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme,
		autoscalingv2.AddToScheme, policyv1.AddToScheme, monitoringv1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return serializer.NewCodecFactory(s, serializer.EnableStrict).UniversalDeserializer()
}()

// objects is a set of decoded manifests, by kind.
type objects struct {
	Deployments     []*appsv1.Deployment
	Services        []*corev1.Service
	ConfigMaps      []*corev1.ConfigMap
	Secrets         []*corev1.Secret
	Jobs            []*batchv1.Job
	CronJobs        []*batchv1.CronJob
	HPAs            []*autoscalingv2.HorizontalPodAutoscaler
	PDBs            []*policyv1.PodDisruptionBudget
	ServiceMonitors []*monitoringv1.ServiceMonitor
	PrometheusRules []*monitoringv1.PrometheusRule
	// ids lists "Kind/name" of every object, in order.
	ids []string
}

func (o *objects) add(obj runtime.Object) error {
	var m metav1.Object
	switch v := obj.(type) {
	case *appsv1.Deployment:
		o.Deployments, m = append(o.Deployments, v), v
	case *corev1.Service:
		o.Services, m = append(o.Services, v), v
	case *corev1.ConfigMap:
		o.ConfigMaps, m = append(o.ConfigMaps, v), v
	case *corev1.Secret:
		o.Secrets, m = append(o.Secrets, v), v
	case *batchv1.Job:
		o.Jobs, m = append(o.Jobs, v), v
	case *batchv1.CronJob:
		o.CronJobs, m = append(o.CronJobs, v), v
	case *autoscalingv2.HorizontalPodAutoscaler:
		o.HPAs, m = append(o.HPAs, v), v
	case *policyv1.PodDisruptionBudget:
		o.PDBs, m = append(o.PDBs, v), v
	case *monitoringv1.ServiceMonitor:
		o.ServiceMonitors, m = append(o.ServiceMonitors, v), v
	case *monitoringv1.PrometheusRule:
		o.PrometheusRules, m = append(o.PrometheusRules, v), v
	default:
		return fmt.Errorf("%T: a kind these tests do not check; add it to objects", obj)
	}
	if m.GetName() == "" {
		return fmt.Errorf("a %s without metadata.name", obj.GetObjectKind().GroupVersionKind().Kind)
	}
	o.ids = append(o.ids, obj.GetObjectKind().GroupVersionKind().Kind+"/"+m.GetName())
	return nil
}

// decodeDocs decodes every YAML document of b strictly into o.
func decodeDocs(name string, b []byte, o *objects) error {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	for i := 0; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		obj, _, err := decoder.Decode(doc, nil, nil)
		if err != nil {
			return fmt.Errorf("%s, document %d: %w", name, i+1, err)
		}
		if err := o.add(obj); err != nil {
			return fmt.Errorf("%s, document %d: %w", name, i+1, err)
		}
	}
}

func stripComments(doc []byte) []byte {
	var out []byte
	for line := range bytes.Lines(doc) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			out = append(out, line...)
		}
	}
	return out
}

// loadFiles decodes the named manifest files of dir.
func loadFiles(t *testing.T, dir string, files ...string) *objects {
	t.Helper()
	o := &objects{}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := decodeDocs(filepath.Join(dir, f), b, o); err != nil {
			t.Fatal(err)
		}
	}
	return o
}

// manifestFiles lists dir's manifests other than its kustomization.
func manifestFiles(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		if b := filepath.Base(f); b != kustomizationFile {
			out = append(out, b)
		}
	}
	return out
}

// readKustomization decodes dir's kustomization.yaml strictly.
func readKustomization(t *testing.T, dir string) kustypes.Kustomization {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, kustomizationFile))
	if err != nil {
		t.Fatal(err)
	}
	var k kustypes.Kustomization
	if err := yaml.UnmarshalStrict(b, &k); err != nil {
		t.Fatalf("%s: %v", filepath.Join(dir, kustomizationFile), err)
	}
	if k.APIVersion != kustypes.KustomizationVersion || k.Kind != kustypes.KustomizationKind {
		t.Fatalf("%s: apiVersion %q kind %q", dir, k.APIVersion, k.Kind)
	}
	return k
}

// base is what `kubectl apply -k deploy/k8s` applies, plus the example
// Secret (which stands for the one created out of band).
func base(t *testing.T) *objects {
	t.Helper()
	o := loadFiles(t, ".", readKustomization(t, ".").Resources...)
	s := loadFiles(t, ".", secretExample)
	o.Secrets = append(o.Secrets, s.Secrets...)
	return o
}

func TestKustomizationsListTheirFiles(t *testing.T) {
	for dir, leftOut := range map[string][]string{".": {secretExample}, monitoringDir: nil} {
		k := readKustomization(t, dir)
		want := slices.DeleteFunc(manifestFiles(t, dir), func(f string) bool { return slices.Contains(leftOut, f) })
		got := slices.Sorted(slices.Values(k.Resources))
		if !slices.Equal(got, want) {
			t.Errorf("%s/%s lists %v, want exactly the manifests beside it %v (left out: %v)", dir, kustomizationFile, got, want, leftOut)
		}
	}
}

// TestKustomizeBuild runs kustomize (the library kubectl apply -k embeds)
// and checks that what it would apply is exactly the listed files' objects.
func TestKustomizeBuild(t *testing.T) {
	for _, dir := range []string{".", monitoringDir} {
		res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
		if err != nil {
			t.Fatalf("kustomize build %s: %v", dir, err)
		}
		built := &objects{}
		for _, r := range res.Resources() {
			b, err := r.AsYAML()
			if err != nil {
				t.Fatal(err)
			}
			if err := decodeDocs("kustomize build "+dir, b, built); err != nil {
				t.Fatal(err)
			}
		}
		files := loadFiles(t, dir, readKustomization(t, dir).Resources...)
		if got, want := slices.Sorted(slices.Values(built.ids)), slices.Sorted(slices.Values(files.ids)); !slices.Equal(got, want) {
			t.Errorf("kustomize build %s gives %v, the files hold %v", dir, got, want)
		}
		for _, s := range built.Secrets {
			t.Errorf("kustomize build %s applies Secret %s: secrets are created out of band", dir, s.Name)
		}
	}
}

// TestEveryManifestDecodesStrictly covers the files no kustomization lists
// (the example Secret) as well.
func TestEveryManifestDecodesStrictly(t *testing.T) {
	for _, dir := range []string{".", monitoringDir} {
		loadFiles(t, dir, manifestFiles(t, dir)...)
	}
	// The strict decoder is what makes this test mean something.
	bad := []byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replica: 3\n")
	if err := decodeDocs("planted", bad, &objects{}); err == nil || !strings.Contains(err.Error(), "replica") {
		t.Fatalf("a misspelt field decoded without error: %v", err)
	}
}

// podSpec is a pod template and who owns it.
type podSpec struct {
	owner  string
	labels map[string]string
	annots map[string]string
	spec   *corev1.PodSpec
}

func (o *objects) podSpecs() []podSpec {
	var out []podSpec
	for _, d := range o.Deployments {
		out = append(out, podSpec{"Deployment/" + d.Name, d.Spec.Template.Labels, d.Spec.Template.Annotations, &d.Spec.Template.Spec})
	}
	for _, j := range o.Jobs {
		out = append(out, podSpec{"Job/" + j.Name, j.Spec.Template.Labels, j.Spec.Template.Annotations, &j.Spec.Template.Spec})
	}
	for _, c := range o.CronJobs {
		tpl := &c.Spec.JobTemplate.Spec.Template
		out = append(out, podSpec{"CronJob/" + c.Name, tpl.Labels, tpl.Annotations, &tpl.Spec})
	}
	return out
}

func TestBaseHasEveryPart(t *testing.T) {
	o := base(t)
	for kind, n := range map[string]int{"Deployment": len(o.Deployments), "Service": len(o.Services),
		"ConfigMap": len(o.ConfigMaps), "Secret": len(o.Secrets), "Job": len(o.Jobs), "CronJob": len(o.CronJobs),
		"HorizontalPodAutoscaler": len(o.HPAs), "PodDisruptionBudget": len(o.PDBs)} {
		if n == 0 {
			t.Errorf("the base has no %s", kind)
		}
	}
	mon := loadFiles(t, monitoringDir, readKustomization(t, monitoringDir).Resources...)
	if len(mon.ServiceMonitors) == 0 || len(mon.PrometheusRules) == 0 {
		t.Errorf("monitoring/ has %d ServiceMonitors and %d PrometheusRules, want both", len(mon.ServiceMonitors), len(mon.PrometheusRules))
	}
	if len(o.ServiceMonitors)+len(o.PrometheusRules) > 0 {
		t.Error("the base must not need the Prometheus Operator's CRDs: keep ServiceMonitors and PrometheusRules in monitoring/")
	}
}

var envRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// TestPodReferences: every Secret, ConfigMap and volume a pod names exists,
// every container runs a server command, and all run the same image.
func TestPodReferences(t *testing.T) {
	o := base(t)
	var images []string
	for _, p := range o.podSpecs() {
		if len(p.spec.Containers) == 0 {
			t.Errorf("%s: no containers", p.owner)
		}
		var volumes []string
		for _, v := range p.spec.Volumes {
			volumes = append(volumes, v.Name)
			if v.ConfigMap != nil && !slices.ContainsFunc(o.ConfigMaps, func(c *corev1.ConfigMap) bool { return c.Name == v.ConfigMap.Name }) {
				t.Errorf("%s: volume %s uses ConfigMap %q, not defined here", p.owner, v.Name, v.ConfigMap.Name)
			}
		}
		for _, c := range p.spec.Containers {
			images = append(images, c.Image)
			if len(c.Args) == 0 || !slices.Contains([]string{"serve", "migrate", "gc"}, c.Args[0]) {
				t.Errorf("%s: args %v do not start with a server command", p.owner, c.Args)
			}
			for _, ef := range c.EnvFrom {
				if ef.SecretRef != nil && !slices.ContainsFunc(o.Secrets, func(s *corev1.Secret) bool { return s.Name == ef.SecretRef.Name }) {
					t.Errorf("%s: envFrom names Secret %q, not defined here", p.owner, ef.SecretRef.Name)
				}
			}
			// Kubernetes expands $(VAR) only for variables defined earlier
			// in env; any other reference stays as literal text.
			var defined []string
			for _, e := range c.Env {
				for _, m := range envRef.FindAllStringSubmatch(e.Value, -1) {
					if !slices.Contains(defined, m[1]) {
						t.Errorf("%s: env %s refers to $(%s), not defined before it", p.owner, e.Name, m[1])
					}
				}
				defined = append(defined, e.Name)
			}
			for _, m := range c.VolumeMounts {
				if !slices.Contains(volumes, m.Name) {
					t.Errorf("%s: mounts volume %q, not defined in the pod", p.owner, m.Name)
				}
			}
		}
	}
	if distinct := slices.Compact(slices.Sorted(slices.Values(images))); len(distinct) != 1 {
		t.Errorf("the server, migrate and GC pods must run one release, they run %v", distinct)
	}
}

// TestSecurityContexts: non-root, read-only root filesystem, no privilege
// escalation, every capability dropped, RuntimeDefault seccomp, no service
// account token, and resource requests and a memory limit, in every pod.
func TestSecurityContexts(t *testing.T) {
	for _, p := range base(t).podSpecs() {
		psc := p.spec.SecurityContext
		switch {
		case psc == nil:
			t.Errorf("%s: no pod securityContext", p.owner)
			continue
		case psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot:
			t.Errorf("%s: runAsNonRoot is not true", p.owner)
		case psc.RunAsUser == nil || *psc.RunAsUser == 0:
			t.Errorf("%s: runAsUser must name the image's non-root user", p.owner)
		case psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
			t.Errorf("%s: seccompProfile is not RuntimeDefault", p.owner)
		}
		if p.spec.AutomountServiceAccountToken == nil || *p.spec.AutomountServiceAccountToken {
			t.Errorf("%s: the server never calls the Kubernetes API; set automountServiceAccountToken: false", p.owner)
		}
		for _, c := range p.spec.Containers {
			sc := c.SecurityContext
			who := p.owner + "/" + c.Name
			switch {
			case sc == nil:
				t.Errorf("%s: no container securityContext", who)
				continue
			case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
				t.Errorf("%s: allowPrivilegeEscalation is not false", who)
			case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
				t.Errorf("%s: readOnlyRootFilesystem is not true", who)
			case sc.Privileged != nil && *sc.Privileged:
				t.Errorf("%s: privileged", who)
			case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0:
				t.Errorf("%s: capabilities must drop ALL and add none", who)
			}
			r := c.Resources
			if r.Requests.Cpu().IsZero() || r.Requests.Memory().IsZero() || r.Limits.Memory().IsZero() {
				t.Errorf("%s: needs cpu and memory requests and a memory limit, has %v", who, r)
			}
			if !r.Limits.Memory().IsZero() && r.Limits.Memory().Cmp(*r.Requests.Memory()) < 0 {
				t.Errorf("%s: memory limit below its request", who)
			}
		}
	}
}

// flag returns the value of --name in args ("--name v" or "--name=v").
func flag(args []string, name string) (string, bool) {
	for i, a := range args {
		if a == "--"+name && i+1 < len(args) {
			return args[i+1], true
		}
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

func hasFlag(args []string, name string) bool {
	return slices.Contains(args, "--"+name) || slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--"+name+"=") })
}

// containerPort resolves a probe's or Service's port (name or number) to
// one of c's ports.
func containerPort(c corev1.Container, p intstr.IntOrString) (corev1.ContainerPort, bool) {
	for _, cp := range c.Ports {
		if p.Type == intstr.String && cp.Name == p.StrVal || p.Type == intstr.Int && cp.ContainerPort == p.IntVal {
			return cp, true
		}
	}
	return corev1.ContainerPort{}, false
}

func serverContainer(t *testing.T, d *appsv1.Deployment) corev1.Container {
	t.Helper()
	for _, c := range d.Spec.Template.Spec.Containers {
		if len(c.Args) > 0 && c.Args[0] == "serve" {
			return c
		}
	}
	t.Fatalf("Deployment %s runs no serve container", d.Name)
	return corev1.Container{}
}

// metricsPort is the port --metrics-addr binds in c's args.
func metricsPort(t *testing.T, c corev1.Container) int32 {
	t.Helper()
	addr, ok := flag(c.Args, "metrics-addr")
	if !ok {
		t.Fatalf("container %s serves no --metrics-addr", c.Name)
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("--metrics-addr %q: %v", addr, err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatalf("--metrics-addr %q: %v", addr, err)
	}
	return int32(n)
}

func duration(t *testing.T, args []string, name string, def time.Duration) time.Duration {
	t.Helper()
	v, ok := flag(args, name)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("--%s %q: %v", name, v, err)
	}
	return d
}

func TestDeployment(t *testing.T) {
	o := base(t)
	for _, d := range o.Deployments {
		tpl := d.Spec.Template
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil || !sel.Matches(labels.Set(tpl.Labels)) {
			t.Errorf("Deployment %s: selector %v does not match its pod labels %v", d.Name, d.Spec.Selector, tpl.Labels)
		}
		c := serverContainer(t, d)
		for _, p := range []struct {
			name  string
			probe *corev1.Probe
			path  string
		}{{"livenessProbe", c.LivenessProbe, "/healthz"}, {"readinessProbe", c.ReadinessProbe, "/readyz"}, {"startupProbe", c.StartupProbe, "/healthz"}} {
			if p.probe == nil || p.probe.HTTPGet == nil {
				t.Errorf("Deployment %s: no HTTP %s", d.Name, p.name)
				continue
			}
			if p.probe.HTTPGet.Path != p.path {
				t.Errorf("Deployment %s: %s hits %s, want %s", d.Name, p.name, p.probe.HTTPGet.Path, p.path)
			}
			cp, ok := containerPort(c, p.probe.HTTPGet.Port)
			if port, _ := flag(c.Args, "port"); !ok || strconv.Itoa(int(cp.ContainerPort)) != port {
				t.Errorf("Deployment %s: %s port %v is not the --port %s the server listens on", d.Name, p.name, p.probe.HTTPGet.Port.String(), port)
			}
		}
		// The config file the server is told to read is the one mounted.
		if len(c.Args) < 3 || c.Args[1] != "config" ||
			!slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return strings.HasPrefix(c.Args[2], m.MountPath+"/") }) {
			t.Errorf("Deployment %s: serves %v but mounts no volume holding that config", d.Name, c.Args)
		}
		if !hasFlag(c.Args, "scalable") {
			t.Errorf("Deployment %s: replicas must run with --scalable", d.Name)
		}
		if f, _ := flag(c.Args, "log-format"); f != "json" {
			t.Errorf("Deployment %s: --log-format %q, want json", d.Name, f)
		}
		// Metrics: a container port of its own, the one the annotations name.
		mp := metricsPort(t, c)
		cp, ok := containerPort(c, intstr.FromString("metrics"))
		if !ok || cp.ContainerPort != mp {
			t.Errorf("Deployment %s: container port \"metrics\" %v is not --metrics-addr's %d", d.Name, cp.ContainerPort, mp)
		}
		if a := tpl.Annotations; a["prometheus.io/scrape"] != "true" || a["prometheus.io/port"] != strconv.Itoa(int(mp)) || a["prometheus.io/path"] != metricsPath {
			t.Errorf("Deployment %s: prometheus.io annotations %v, want scrape \"true\", port %d, path %s", d.Name, a, mp, metricsPath)
		}
		// Drain: the kubelet must not kill a replica still finishing requests.
		drain, shutdown := duration(t, c.Args, "drain-delay", 0), duration(t, c.Args, "shutdown-timeout", 20*time.Second)
		if drain <= 0 {
			t.Errorf("Deployment %s: no --drain-delay: the load balancer would still route to a stopping replica", d.Name)
		}
		grace := 30 * time.Second // the API server's default
		if g := d.Spec.Template.Spec.TerminationGracePeriodSeconds; g != nil {
			grace = time.Duration(*g) * time.Second
		}
		if grace <= drain+shutdown+telemetryFlush {
			t.Errorf("Deployment %s: terminationGracePeriodSeconds %s must exceed drain %s + shutdown %s + trace flush %s",
				d.Name, grace, drain, shutdown, telemetryFlush)
		}
		// Spread across zones and hosts, counting only this Deployment's pods.
		var keys []string
		for _, tsc := range tpl.Spec.TopologySpreadConstraints {
			keys = append(keys, tsc.TopologyKey)
			s, err := metav1.LabelSelectorAsSelector(tsc.LabelSelector)
			if err != nil || s.Empty() || !s.Matches(labels.Set(tpl.Labels)) {
				t.Errorf("Deployment %s: spread over %s selects %v, not its own pods", d.Name, tsc.TopologyKey, tsc.LabelSelector)
			}
		}
		for _, k := range []string{corev1.LabelTopologyZone, corev1.LabelHostname} {
			if !slices.Contains(keys, k) {
				t.Errorf("Deployment %s: no topology spread over %s", d.Name, k)
			}
		}
	}
}

func TestServices(t *testing.T) {
	o := base(t)
	var exposesMetrics bool
	for _, s := range o.Services {
		var pods []*appsv1.Deployment
		for _, d := range o.Deployments {
			if labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) && len(s.Spec.Selector) > 0 {
				pods = append(pods, d)
			}
		}
		if len(pods) == 0 {
			t.Errorf("Service %s selects no Deployment's pods", s.Name)
			continue
		}
		for _, d := range pods {
			c := serverContainer(t, d)
			mp := metricsPort(t, c)
			for _, sp := range s.Spec.Ports {
				cp, ok := containerPort(c, sp.TargetPort)
				if !ok {
					t.Errorf("Service %s: port %s targets %s, not a port of Deployment %s", s.Name, sp.Name, sp.TargetPort.String(), d.Name)
					continue
				}
				if cp.ContainerPort == mp {
					exposesMetrics = true
					if s.Name == "tiled" {
						t.Errorf("the public Service %s exposes the unauthenticated metrics port %d", s.Name, mp)
					}
				}
			}
		}
	}
	if !exposesMetrics {
		t.Error("no Service reaches the metrics port: the ServiceMonitor has nothing to scrape")
	}
}

// connectionBudget is what the PostgreSQL server admits by default:
// max_connections (100) less superuser_reserved_connections (3).
const connectionBudget = 97

func TestAutoscaler(t *testing.T) {
	o := base(t)
	if len(o.HPAs) == 0 {
		t.Fatal("no HorizontalPodAutoscaler")
	}
	for _, h := range o.HPAs {
		ref := h.Spec.ScaleTargetRef
		i := slices.IndexFunc(o.Deployments, func(d *appsv1.Deployment) bool { return d.Name == ref.Name })
		if ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" || i < 0 {
			t.Errorf("HPA %s targets %s %s/%s, not a Deployment defined here", h.Name, ref.APIVersion, ref.Kind, ref.Name)
			continue
		}
		d := o.Deployments[i]
		if d.Spec.Replicas != nil {
			t.Errorf("Deployment %s sets replicas: every apply would undo what HPA %s decided", d.Name, h.Name)
		}
		if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 3 {
			t.Errorf("HPA %s: minReplicas must be at least 3 (one drained or moving while two serve)", h.Name)
		}
		var cpu bool
		for _, m := range h.Spec.Metrics {
			cpu = cpu || m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil && m.Resource.Name == corev1.ResourceCPU &&
				m.Resource.Target.Type == autoscalingv2.UtilizationMetricType && m.Resource.Target.AverageUtilization != nil
		}
		if !cpu {
			t.Errorf("HPA %s: no CPU utilization target", h.Name)
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			if c.Resources.Requests.Cpu().IsZero() {
				t.Errorf("HPA %s: container %s has no CPU request, so utilization is undefined", h.Name, c.Name)
			}
		}
		if b := h.Spec.Behavior; b == nil || b.ScaleDown == nil || b.ScaleDown.StabilizationWindowSeconds == nil || *b.ScaleDown.StabilizationWindowSeconds < 60 {
			t.Errorf("HPA %s: needs a scale-down stabilization window of a minute or more", h.Name)
		}
		// PostgreSQL must admit every replica's pool at the maximum, during a
		// rollout's surge, plus the migrate and GC jobs (a pool of 2 each).
		cfg := loadEmbeddedConfig(t, o)
		perReplica := cfg.Database.PoolSize + cfg.Database.MaxOverflow
		maxSurge := ptr(intstr.FromString("25%")) // the API server's default
		if ru := d.Spec.Strategy.RollingUpdate; ru != nil && ru.MaxSurge != nil {
			maxSurge = ru.MaxSurge
		}
		surge, err := intstr.GetScaledValueFromIntOrPercent(maxSurge, int(h.Spec.MaxReplicas), true)
		if err != nil {
			t.Fatal(err)
		}
		need := (int(h.Spec.MaxReplicas)+surge)*perReplica + 2*(len(o.Jobs)+len(o.CronJobs))
		if need > connectionBudget {
			t.Errorf("HPA %s: %d replicas (+%d surging) x %d connections + jobs = %d, more than PostgreSQL's default %d",
				h.Name, h.Spec.MaxReplicas, surge, perReplica, need, connectionBudget)
		}
		for _, p := range o.PDBs {
			s, _ := metav1.LabelSelectorAsSelector(p.Spec.Selector)
			if !s.Matches(labels.Set(d.Spec.Template.Labels)) {
				t.Errorf("PodDisruptionBudget %s does not select Deployment %s's pods", p.Name, d.Name)
			}
			if p.Spec.MaxUnavailable == nil || p.Spec.MaxUnavailable.IntValue() < 1 || p.Spec.MaxUnavailable.IntValue() >= int(*h.Spec.MinReplicas) {
				t.Errorf("PodDisruptionBudget %s: maxUnavailable must let one pod go and keep the rest of minReplicas serving", p.Name)
			}
		}
	}
}

// TestServiceMonitor: it selects the metrics Service, scrapes a port that
// Service has at the path the listener serves, and names the job as the
// alerts expect.
func TestServiceMonitor(t *testing.T) {
	o := base(t)
	mon := loadFiles(t, monitoringDir, readKustomization(t, monitoringDir).Resources...)
	for _, sm := range mon.ServiceMonitors {
		sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
		if err != nil {
			t.Fatal(err)
		}
		var matched []*corev1.Service
		for _, s := range o.Services {
			if sel.Matches(labels.Set(s.Labels)) {
				matched = append(matched, s)
			}
		}
		if len(matched) != 1 {
			t.Fatalf("ServiceMonitor %s selects %d Services, want the metrics one", sm.Name, len(matched))
		}
		s := matched[0]
		if s.Name == "tiled" {
			t.Errorf("ServiceMonitor %s scrapes the public Service", sm.Name)
		}
		if got := s.Labels[sm.Spec.JobLabel]; got != alertJob {
			t.Errorf("ServiceMonitor %s: jobLabel %q gives job=%q, the alerts expect job=%q", sm.Name, sm.Spec.JobLabel, got, alertJob)
		}
		if len(sm.Spec.Endpoints) == 0 {
			t.Errorf("ServiceMonitor %s has no endpoints", sm.Name)
		}
		for _, e := range sm.Spec.Endpoints {
			if !slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == e.Port }) {
				t.Errorf("ServiceMonitor %s scrapes port %q, which Service %s does not have", sm.Name, e.Port, s.Name)
			}
			if e.Path != metricsPath {
				t.Errorf("ServiceMonitor %s scrapes %q, the listener serves %s", sm.Name, e.Path, metricsPath)
			}
		}
	}
}

// loadEmbeddedConfig loads the ConfigMap's config.yml exactly as serve
// --scalable would, with the Secret's variables in the environment.
func loadEmbeddedConfig(t *testing.T, o *objects) *config.Config {
	t.Helper()
	env := map[string]string{}
	for _, s := range o.Secrets {
		for k, v := range s.StringData {
			env[k] = v
		}
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	if len(o.ConfigMaps) != 1 {
		t.Fatalf("want one ConfigMap, have %d", len(o.ConfigMaps))
	}
	cm := o.ConfigMaps[0]
	src, ok := cm.Data["config.yml"]
	if !ok {
		t.Fatalf("ConfigMap %s has no config.yml", cm.Name)
	}
	c, err := config.LoadBytes("configmap/"+cm.Name+"/config.yml", []byte(src), lookup)
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
	return c
}

func TestEmbeddedConfig(t *testing.T) {
	c := loadEmbeddedConfig(t, base(t))
	if c.Authentication.SingleUser() || c.Database.Driver != config.DriverPostgres {
		t.Fatalf("the deployed config should be multi-user on PostgreSQL: %+v", c.Database)
	}
	if c.Database.InitIfNotExists {
		t.Error("replicas must not migrate in this layout: the migrate Job does")
	}
}

func ptr[T any](v T) *T { return &v }
