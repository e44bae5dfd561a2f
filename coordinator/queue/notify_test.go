package queue

import "testing"

func TestNotifier(t *testing.T) {
	n := NewNotifier()
	w1, w2 := n.Wait(), n.Wait()
	select {
	case <-w1:
		t.Fatal("Wait channel closed before Notify")
	default:
	}
	n.Notify()
	<-w1
	<-w2
	select {
	case <-n.Wait():
		t.Fatal("Wait after Notify returned a closed channel")
	default:
	}
}
