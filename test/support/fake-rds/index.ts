export { FakeRds, QueryFault, startFakeRds, type FakeInstance, type FakeInstanceStatus, type FakeRdsCall, type FakeRdsOptions, type FakeSnapshot } from './fake-rds.js';
