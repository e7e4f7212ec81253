package dispatch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/tektoncd/pipeline/pkg/apis/config"
	pipelinev1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"knative.dev/pkg/apis"
	"sigs.k8s.io/yaml"

	"github.com/switchyard-dev/switchyard/internal/queue"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// TaskRunCreator creates TaskRuns, which Tekton Triggers templates may
// render. The error contract is Creator's. KubeCreator and DirCreator
// implement it; a Creator without it dead-letters TaskRun work.
type TaskRunCreator interface {
	CreateTaskRun(ctx context.Context, tr *pipelinev1.TaskRun) error
}

var taskRunType = metav1.TypeMeta{
	APIVersion: pipelinev1.SchemeGroupVersion.String(),
	Kind:       routing.KindTaskRun,
}

// RenderTaskRun builds the tekton.dev/v1 TaskRun of a TaskRun target and
// checks it as Render checks a PipelineRun: Tekton's SetDefaults on a copy,
// then Validate, in a create context. Errors are queue.Permanent.
func RenderTaskRun(ctx context.Context, w queue.Work) (*pipelinev1.TaskRun, error) {
	tr, err := buildTaskRun(w)
	if err == nil {
		err = checkTaskRun(ctx, tr)
	}
	if err != nil {
		return nil, queue.Permanent(fmt.Errorf("render taskrun: %w", err))
	}
	return tr, nil
}

// RenderAny renders the run of w, whichever its kind: a *PipelineRun
// (Render) or a *TaskRun (RenderTaskRun).
func RenderAny(ctx context.Context, w queue.Work) (runtime.Object, error) {
	if w.Target.RunKind() == routing.KindTaskRun {
		return RenderTaskRun(ctx, w)
	}
	return Render(ctx, w)
}

// MarshalRunYAML returns a rendered run (RenderAny) as YAML.
func MarshalRunYAML(obj runtime.Object) ([]byte, error) {
	if pr, ok := obj.(*pipelinev1.PipelineRun); ok {
		return MarshalYAML(pr)
	}
	b, err := yaml.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("marshal run: %w", err)
	}
	return b, nil
}

// buildTaskRun maps the work onto the TaskRun routing rendered, with
// Switchyard's labels and annotations and the name, namespace and service
// account routing chose within the grant.
func buildTaskRun(w queue.Work) (*pipelinev1.TaskRun, error) {
	t := w.Target
	errs := checkWork(w)
	if t.RunKind() != routing.KindTaskRun || len(t.Resource) == 0 {
		errs = append(errs, errors.New("target is not a rendered TaskRun"))
	}
	if t.Concurrency != nil {
		// Routing refuses this at load; the queue is not trusted to agree.
		errs = append(errs, errors.New("concurrency groups hold PipelineRuns only"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var tr pipelinev1.TaskRun
	dec := json.NewDecoder(bytes.NewReader(t.Resource))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&tr); err != nil {
		return nil, fmt.Errorf("decode rendered taskrun: %w", err)
	}
	if tr.TypeMeta != taskRunType {
		return nil, fmt.Errorf("rendered resource is %s %s, want %s %s", tr.APIVersion, tr.Kind, taskRunType.APIVersion, taskRunType.Kind)
	}
	labels, annotations := ownMetadata(w)
	if err := mergeTemplateMetadata(tr.Labels, tr.Annotations, labels, annotations); err != nil {
		return nil, err
	}
	out := &pipelinev1.TaskRun{
		TypeMeta: taskRunType,
		ObjectMeta: metav1.ObjectMeta{
			Name:        t.Name,
			Namespace:   t.Namespace,
			Labels:      labels,
			Annotations: annotations,
		},
		Spec: tr.Spec,
	}
	if t.ServiceAccount != "" {
		out.Spec.ServiceAccountName = t.ServiceAccount
	}
	return out, nil
}

// checkTaskRun runs Tekton's defaulting and validation on a copy of tr.
func checkTaskRun(ctx context.Context, tr *pipelinev1.TaskRun) error {
	if config.FromContext(ctx) == nil {
		ctx = config.ToContext(ctx, defaultTektonConfig)
	}
	ctx = apis.WithinCreate(ctx)
	cp := tr.DeepCopy()
	cp.SetDefaults(ctx)
	if ferr := cp.Validate(ctx); ferr != nil {
		return ferr
	}
	return nil
}

var _ TaskRunCreator = (*KubeCreator)(nil)

// CreateTaskRun creates tr in its namespace. See Creator for the error
// contract; TaskRuns take no part in concurrency groups.
func (k *KubeCreator) CreateTaskRun(ctx context.Context, tr *pipelinev1.TaskRun) error {
	_, err := k.client.TektonV1().TaskRuns(tr.Namespace).Create(ctx, tr, metav1.CreateOptions{FieldManager: fieldManager})
	if err = classify(err); err != nil {
		return fmt.Errorf("create taskrun %s/%s: %w", tr.Namespace, tr.Name, err)
	}
	return nil
}

var _ TaskRunCreator = DirCreator{}

// CreateTaskRun writes tr as Create writes a PipelineRun.
func (c DirCreator) CreateTaskRun(ctx context.Context, tr *pipelinev1.TaskRun) error {
	b, err := MarshalRunYAML(tr)
	if err != nil {
		return queue.Permanent(err)
	}
	if err := c.write(ctx, tr.Namespace, tr.Name, b); err != nil {
		return fmt.Errorf("write taskrun %s/%s: %w", tr.Namespace, tr.Name, err)
	}
	return nil
}

// createRun renders and creates the run of w with c, and returns its
// namespace and name.
func createRun(ctx context.Context, c Creator, w queue.Work) (namespace, name string, err error) {
	if w.Target.RunKind() != routing.KindTaskRun {
		pr, err := Render(ctx, w)
		if err != nil {
			return "", "", err
		}
		return pr.Namespace, pr.Name, c.Create(ctx, pr)
	}
	tc, ok := c.(TaskRunCreator)
	if !ok {
		return "", "", queue.Permanent(fmt.Errorf("this creator cannot create TaskRuns"))
	}
	tr, err := RenderTaskRun(ctx, w)
	if err != nil {
		return "", "", err
	}
	return tr.Namespace, tr.Name, tc.CreateTaskRun(ctx, tr)
}
