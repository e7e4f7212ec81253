package routing

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/decls"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/types"
	celext "github.com/google/cel-go/ext"
	"github.com/google/cel-go/interpreter"
	triggersv1 "github.com/tektoncd/triggers/pkg/apis/triggers/v1beta1"
	triggerscel "github.com/tektoncd/triggers/pkg/interceptors/cel"
)

// CEL `when` conditions see what Tekton Triggers' CEL interceptor filters
// see (body, header, extensions, requestURL and its functions: match,
// truncate, split, parseJSON, parseURL, ...), plus event, the CloudEvent's
// attributes. The environment mirrors makeCelEnv in
// github.com/tektoncd/triggers/pkg/interceptors/cel, so a filter copied from
// an EventListener behaves the same.

// celCostLimit bounds one evaluation (cel-go's cost units, about one per
// operation): a condition walking a huge payload stops with an error
// instead of holding the webhook.
const celCostLimit = 1_000_000

// ErrSecretsUnavailable is what compareSecret fails with: Switchyard never
// gives rules a way to read secrets.
var ErrSecretsUnavailable = errors.New("compareSecret is not available: Switchyard conditions cannot read secrets")

// noSecrets is the SecretGetter behind compareSecret. Load already rejects
// expressions that call it; this is the second lock.
type noSecrets struct{}

func (noSecrets) Get(context.Context, string, *triggersv1.SecretRef) ([]byte, error) {
	return nil, ErrSecretsUnavailable
}

// celEnv is built once: it is immutable and safe for concurrent use, and
// building it costs milliseconds.
var celEnv = sync.OnceValues(func() (*cel.Env, error) {
	mapStrDyn := types.NewMapType(types.StringType, types.DynType)
	return cel.NewEnv(
		triggerscel.Triggers(context.Background(), "", noSecrets{}),
		celext.Strings(),
		celext.Encoders(),
		celext.Sets(),
		celext.Lists(),
		celext.Math(),
		cel.VariableDecls(
			decls.NewVariable("body", mapStrDyn),
			decls.NewVariable("header", mapStrDyn),
			decls.NewVariable("extensions", mapStrDyn),
			decls.NewVariable("requestURL", types.StringType),
			decls.NewVariable("event", mapStrDyn),
		))
})

// condition is a compiled `when` expression.
type condition struct {
	expr string
	prg  cel.Program
	// usesBody is set when the expression reads body, so the payload is
	// parsed only for conditions that need it.
	usesBody bool
	// bodyPaths are the body fields it reads, when it reads body only
	// through field selections (body.a.b); nil otherwise.
	bodyPaths *bodyPaths
	// changedFiles is set when the expression may read
	// extensions.changed_files, which is then computed for it (as
	// Tekton's GitHub interceptor adds it before a CEL interceptor runs).
	changedFiles bool
	// headers are the header names the expression reads by a literal
	// (header.x, header['x'], header.canonical('x'), 'x' in header), for
	// load to refuse credential headers.
	headers []string
}

// compileCondition parses, type-checks (compileBool) and plans expr.
func compileCondition(expr string) (*condition, error) {
	return compileCEL(expr, true)
}

// compileCEL parses, type-checks and plans expr; wantBool requires a bool
// (or dyn) result, as conditions do; overlays take any.
func compileCEL(expr string, wantBool bool) (*condition, error) {
	env, err := celEnv()
	if err != nil {
		return nil, fmt.Errorf("build CEL environment: %w", err)
	}
	compile := compileAny
	if wantBool {
		compile = compileBool
	}
	checked, err := compile(env, expr)
	if err != nil {
		return nil, err
	}
	c := &condition{expr: expr, changedFiles: strings.Contains(expr, changedFilesExtension)}
	for _, ref := range checked.NativeRep().ReferenceMap() {
		if ref.Name == "body" {
			c.usesBody = true
		}
		for _, id := range ref.OverloadIDs {
			if strings.HasPrefix(id, "compareSecret") {
				return nil, errors.New("compareSecret is not available: conditions cannot read secrets (the source's signature is already verified)")
			}
		}
	}
	c.headers = literalHeaders(checked.NativeRep().Expr())
	if c.usesBody {
		c.bodyPaths = selectedBodyPaths(checked.NativeRep().Expr())
	}
	c.prg, err = env.Program(checked,
		cel.EvalOptions(cel.OptOptimize),
		cel.CostLimit(celCostLimit),
	)
	if err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	return c, nil
}

// literalHeaders returns the header names an expression reads by a string
// literal. A name computed at runtime is not found here: StripCredentials
// (and ingest) remove credential headers before any condition runs, so such
// an expression sees none.
func literalHeaders(e ast.Expr) []string {
	isHeader := func(e ast.Expr) bool { return e.Kind() == ast.IdentKind && e.AsIdent() == "header" }
	literal := func(e ast.Expr) (string, bool) {
		if e.Kind() != ast.LiteralKind {
			return "", false
		}
		s, ok := e.AsLiteral().Value().(string)
		return s, ok
	}
	var out []string
	ast.PreOrderVisit(e, ast.NewExprVisitor(func(e ast.Expr) {
		var name ast.Expr
		switch e.Kind() {
		case ast.SelectKind:
			if sel := e.AsSelect(); isHeader(sel.Operand()) {
				out = append(out, sel.FieldName())
			}
			return
		case ast.CallKind:
			call := e.AsCall()
			args := call.Args()
			switch fn := call.FunctionName(); {
			case (fn == operators.Index || fn == operators.OptIndex || fn == operators.OptSelect) && len(args) == 2 && isHeader(args[0]):
				name = args[1]
			case (fn == operators.In || fn == operators.OldIn) && len(args) == 2 && isHeader(args[1]):
				name = args[0]
			case (fn == "match" || fn == "canonical") && call.IsMemberFunction() && isHeader(call.Target()) && len(args) > 0:
				name = args[0]
			}
		}
		if name != nil {
			if s, ok := literal(name); ok {
				out = append(out, s)
			}
		}
	}))
	return out
}

// selectedBodyPaths returns the paths an expression reads of body when it
// reads it only through field selections (body.a.b, has(body.a)); nil when
// body appears otherwise (size(body), body['a'], body.?a, a comprehension
// over it), where a condition must see the whole payload.
func selectedBodyPaths(e ast.Expr) *bodyPaths {
	type sel struct {
		id   int64
		path []string
	}
	var (
		idents   = map[int64]bool{} // ids of the body identifiers
		operands = map[int64]bool{} // ids of expressions something selects from
		chains   []sel
	)
	ast.PreOrderVisit(e, ast.NewExprVisitor(func(e ast.Expr) {
		switch e.Kind() {
		case ast.IdentKind:
			if e.AsIdent() == "body" {
				idents[e.ID()] = true
			}
		case ast.SelectKind:
			s := e.AsSelect()
			operands[s.Operand().ID()] = true
			path := []string{s.FieldName()}
			for op := s.Operand(); ; op = op.AsSelect().Operand() {
				if op.Kind() == ast.IdentKind && op.AsIdent() == "body" {
					slices.Reverse(path)
					chains = append(chains, sel{e.ID(), path})
					break
				}
				if op.Kind() != ast.SelectKind {
					break
				}
				path = append(path, op.AsSelect().FieldName())
			}
		}
	}))
	for id := range idents {
		if !operands[id] {
			return nil
		}
	}
	root := &bodyPaths{}
	for _, c := range chains {
		// Only whole chains: body.a.b reads b, not all of body.a.
		if !operands[c.id] {
			root.add(c.path)
		}
	}
	return root
}

// compileBool parses and type-checks expr in env. A result type other than
// bool (or dyn, checked when evaluated, as Tekton does) is an error.
func compileBool(env *cel.Env, expr string) (*cel.Ast, error) {
	ast, err := compileAny(env, expr)
	if err != nil {
		return nil, err
	}
	if out := ast.OutputType(); !out.IsExactType(types.BoolType) && !out.IsExactType(types.DynType) {
		return nil, fmt.Errorf("must be a bool expression, it is %s", out)
	}
	return ast, nil
}

// compileAny parses and type-checks expr in env, whatever its type.
func compileAny(env *cel.Env, expr string) (*cel.Ast, error) {
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		var msgs []string
		for _, e := range iss.Errors() {
			at := fmt.Sprintf("column %d", e.Location.Column()+1)
			if l := e.Location.Line(); l > 1 {
				at = fmt.Sprintf("line %d, %s", l, at)
			}
			msgs = append(msgs, at+": "+e.Message)
		}
		return nil, errors.New(strings.Join(msgs, "; "))
	}
	return ast, nil
}

// eval runs the condition. A non-bool result or an evaluation error (a
// missing key, the cost limit) is a mismatch with its reason.
func (c *condition) eval(vars interpreter.Activation) (bool, error) {
	out, _, err := c.prg.Eval(vars)
	if err != nil {
		return false, err
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, fmt.Errorf("evaluated to %v (%s), not a bool", out, out.Type().TypeName())
	}
	return bool(b), nil
}

// celVars is the activation of one event: the variables are read from the
// route state; body is what the condition reads of the payload.
type celVars struct {
	st   *routeState
	body map[string]any
	// changedFiles adds changed_files to extensions (condition.changedFiles).
	changedFiles bool
}

var _ interpreter.Activation = celVars{}

func (v celVars) ResolveName(name string) (any, bool) {
	switch name {
	case "body":
		return v.body, true
	case "header":
		return v.st.headers(), true
	case "extensions":
		if v.changedFiles {
			return v.st.extWithChangedFiles(), true
		}
		return v.st.ext, true
	case "requestURL":
		return "/v1/hooks/" + v.st.in.Source, true
	case "event":
		return v.st.eventVar(), true
	}
	return nil, false
}

func (celVars) Parent() interpreter.Activation { return nil }
