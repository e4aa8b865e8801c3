// one implementation for the product's throwaway servers and the tests' own
export { freePort, portIsOpen } from '../../src/demo/free-port.js';
