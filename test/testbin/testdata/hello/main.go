// Command hello is a test fixture for package testbin.
package main

import "fmt"

func main() { fmt.Println("hello from testbin") }
