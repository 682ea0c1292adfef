import { config } from '../config';

/** On the local emulators, fixed credentials (nothing checks them); on AWS, the function's role. */
export const localCredentials = () => (config().isLocal ? { credentials: { accessKeyId: 'local', secretAccessKey: 'local' } } : {});
