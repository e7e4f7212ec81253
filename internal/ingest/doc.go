// Package ingest is Switchyard's HTTP front: it reads each webhook with a
// size cap, authenticates it on the raw bytes before any JSON decoding,
// normalizes the provider's payload into CloudEvents, asks routing for the
// targets and hands the result to the queue.
//
// Invariants: a 2xx is sent only after the publisher reported that every
// message was stored; a request that fails verification never yields a
// 2xx; secrets and bodies are never logged. Providers are small types
// registered by kind, one file each; ingest never imports dispatch or
// Kubernetes packages.
package ingest
