package framework

// What a filter decided travels to Bind through the CycleState, as kube-scheduler's
// VolumeBinding writes its state in PreFilter and reads it in PreBind: the filter that decides
// which interfaces a node may announce an L2 unit on (the Interfaces plugin) records its
// choice, and the bind plugin announces on what it names, so the election and the
// announcement apply one rule, kept in one place.

// InterfaceChoiceKey is where the choice is recorded.
const InterfaceChoiceKey StateKey = "herald.dev/interface-choice"

// InterfaceChoice is the recorded choice.
type InterfaceChoice interface {
	StateData
	// Interfaces returns, sorted, the interfaces node announces the L2 unit on by the rule
	// that filtered it; none when the node cannot announce it.
	Interfaces(unit *Unit, node *NodeInfo) []string
}

// ChosenInterfaces returns the interfaces the cycle's filters chose for node to announce the
// unit on; ok is false when no filter recorded a choice (a profile without the Interfaces
// plugin's PreFilter).
func ChosenInterfaces(state *CycleState, unit *Unit, node *NodeInfo) (itfs []string, ok bool) {
	d, err := state.Read(InterfaceChoiceKey)
	if err != nil {
		return nil, false
	}
	c, ok := d.(InterfaceChoice)
	if !ok {
		return nil, false
	}
	return c.Interfaces(unit, node), true
}
