package queue

import (
	"testing"
	"time"
)

// An events max age under a day shortens the duplicate window with it:
// JetStream refuses a window longer than the stream's max age, so `serve
// --events-max-age 1h` must not fail for a default it never set.
func TestShortEventsMaxAgeShortensTheDuplicateWindow(t *testing.T) {
	c, err := Config{EventsMaxAge: time.Hour}.withDefaults()
	if err != nil {
		t.Fatalf("events max age 1h: %v", err)
	}
	if c.DuplicateWindow != time.Hour {
		t.Errorf("duplicate window = %s, want 1h", c.DuplicateWindow)
	}
	if c, _ := (Config{}).withDefaults(); c.DuplicateWindow != 24*time.Hour || c.EventsMaxAge != 7*24*time.Hour {
		t.Errorf("defaults: window %s, max age %s", c.DuplicateWindow, c.EventsMaxAge)
	}
	if _, err := (Config{EventsMaxAge: time.Hour, DuplicateWindow: 2 * time.Hour}).withDefaults(); err == nil {
		t.Error("an explicit window longer than the max age is accepted")
	}
}
