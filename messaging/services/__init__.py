"""Every write to LogLab's state goes through a function in this package.

Each one takes keyword-only arguments, is atomic, asks the engine for the decision, stores the
result with a numbered RoomEvent, and broadcasts that event after the commit. One module per
sub-domain; import the module you need (this package re-exports nothing, so importing one
service never drags in the others).
"""
