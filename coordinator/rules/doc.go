// Package rules owns events and the rules that turn them into test
// requests: the Event a build system posts (its strict JSON decoding and
// validation), the Rule configuration written as CEL expressions, and the
// Engine that compiles the rules once and expands each event into
// requests.
//
// The contract:
//
//   - New compiles and type-checks every rule up front. A rule that does
//     not compile, whose when is not a bool, whose packages is not a
//     list(string) or whose targets is not a list(map(string, string)) is a
//     configuration error (ErrConfig) naming the rule and carrying CEL's
//     message; the coordinator refuses to start with it.
//   - Expand evaluates every rule in configuration order against one
//     validated event. A rule that fails at run time (cost limit, timeout,
//     a failing reverse-dependency lookup, a bad package or target name, too
//     many requests) is recorded in the Expansion with its error and adds no
//     requests; the other rules still run. Expand itself fails only for an
//     invalid event, a failing Targets lookup or a cancelled context.
//   - Requests are deduplicated on (package, version, release, arch,
//     triggers) and sorted. A request for a target no agent can serve is
//     kept and marked Pending with the reason, never dropped.
//   - The engine has no side effects of its own. Reverse dependencies and
//     the grid's targets come through the ReverseDeps and Targets
//     interfaces; an Engine is safe for concurrent use when they are.
//
// It must not know about the store, the HTTP API, the CLI or agents: it
// takes plain structs and interfaces and returns plain structs. Storing
// events, creating jobs and routing them to agents belong to the caller.
package rules
