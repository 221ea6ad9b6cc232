// Where the web clients reach the server (the same origin serves the apps and the API). Free
// of imports, so that any bundle (the GraphiQL page too) can use it cheaply.

/** The GraphQL websocket (graphql-transport-ws) of the page's own origin. */
export function socketUrl(location: Pick<Location, 'protocol' | 'host'>): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/graphql`
}
