// Package announcerv1 is the generated Go code of the announcer protocol
// (announcers/proto/herald/announcer/v1/announcer.proto). Regenerate with hack/generate-proto.sh;
// code outside package announcers should use the Go types of package announcers instead.
package announcerv1
