package ingest

import (
	"net/http"
	"strings"
	"testing"
)

// quayLegacyPush is the "repo_push" payload of older Quay versions (Quay's
// former documentation, "Webhook call format"): updated_tags is an object
// of tag to image id, not a list.
const quayLegacyPush = `{
  "pushed_image_count": 2,
  "name": "ubuntu",
  "repository": "devtable/ubuntu",
  "docker_url": "quay.io/devtable/ubuntu",
  "updated_tags": {
    "latest": "b750fe79269d2ec9a3c593ef05b4332b1d1a02a62b4accb2c21d589ff2f5f2dc",
    "22.04": "b750fe79269d2ec9a3c593ef05b4332b1d1a02a62b4accb2c21d589ff2f5f2dc"
  },
  "namespace": "devtable",
  "visibility": "private",
  "homepage": "https://quay.io/repository/devtable/ubuntu"
}`

// TestQuayLegacyPayload: an older Quay push normalizes like today's: one
// image.push per tag, in tag order.
func TestQuayLegacyPayload(t *testing.T) {
	for name, body := range map[string]string{
		"legacy": quayLegacyPush,
		"today": strings.Replace(quayLegacyPush, `{
    "latest": "b750fe79269d2ec9a3c593ef05b4332b1d1a02a62b4accb2c21d589ff2f5f2dc",
    "22.04": "b750fe79269d2ec9a3c593ef05b4332b1d1a02a62b4accb2c21d589ff2f5f2dc"
  }`, `["22.04", "latest"]`, 1),
	} {
		res, err := quayProvider{}.Normalize(&Request{Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(body)})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var got []string
		for _, ev := range res.Events {
			got = append(got, ev.Type()+" "+extString(ev, "repository")+":"+extString(ev, "tag"))
		}
		want := "dev.switchyard.image.push quay.io/devtable/ubuntu:22.04,dev.switchyard.image.push quay.io/devtable/ubuntu:latest"
		if strings.Join(got, ",") != want {
			t.Errorf("%s: events %v, want %s", name, got, want)
		}
	}
	_, err := quayProvider{}.Normalize(&Request{Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"docker_url":"quay.io/a/b","updated_tags":"latest"}`)})
	if err == nil {
		t.Error("updated_tags as a string was accepted")
	}
}

// TestACREventGridTypeWithoutNamespace: Event Grid events typed
// "ImagePushed" (without "Microsoft.ContainerRegistry.") normalize like
// the namespaced ones.
func TestACREventGridTypeWithoutNamespace(t *testing.T) {
	h, body := busSample(t, "acr", "eventgrid-push")
	short := strings.Replace(string(body), `"Microsoft.ContainerRegistry.ImagePushed"`, `"ImagePushed"`, 1)
	if short == string(body) {
		t.Fatal("sample has no ImagePushed type")
	}
	for name, b := range map[string]string{"namespaced": string(body), "short": short} {
		res, err := acrProvider{}.Normalize(&Request{Header: h, Body: []byte(b)})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(res.Events) != 1 || res.Events[0].Type() != TypeImagePush || extString(res.Events[0], "repository") != "demo.azurecr.io/aci-helloworld" {
			t.Errorf("%s: events %+v, want one image.push of demo.azurecr.io/aci-helloworld", name, res.Events)
		}
	}
	chart := strings.Replace(string(body), `"Microsoft.ContainerRegistry.ImagePushed"`, `"ChartPushed"`, 1)
	res, err := acrProvider{}.Normalize(&Request{Header: h, Body: []byte(chart)})
	if err != nil || len(res.Events) != 1 || res.Events[0].Type() != acrChartPushed {
		t.Errorf("ChartPushed: %+v, %v, want type %s", res.Events, err, acrChartPushed)
	}
}

func extString(ev interface{ Extensions() map[string]any }, name string) string {
	s, _ := ev.Extensions()[name].(string)
	return s
}
