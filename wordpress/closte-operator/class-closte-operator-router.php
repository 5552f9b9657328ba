<?php
/**
 * Sends WordPress's requests to Closte's client API to the sidecar instead.
 *
 * @package Closte_Operator
 */

defined( 'ABSPATH' ) || exit;

/**
 * The `pre_http_request` handler. Ultimate Multisite's Closte integration
 * posts to https://app.closte.com/api/client/ with `apikey`; the request goes
 * to the sidecar's Closte-compatible door with the sidecar token as `apikey`,
 * and its answer comes back as if Closte had sent it. WordPress therefore needs
 * no Closte key at all.
 *
 * Only the Closte client's own calls are routed. WordPress runs
 * `pre_http_request` before its own unsafe-URL check, so any request to the
 * Closte URL would otherwise leave with the token: a pingback, the oEmbed
 * proxy, a form plugin with a configurable URL. A request is routed when all
 * hold, checked before anything is sent or queued:
 *
 * - it is not a safe request (`reject_unsafe_urls` unset or false);
 * - its path is one the Closte client calls, with the method it uses (ROUTES);
 * - its body is a form (an array, or a form-encoded string);
 * - its `apikey` equals CLOSTE_CLIENT_API_KEY, the WordPress-side placeholder
 *   that makes Ultimate Multisite send anything (never a Closte key).
 *
 * Anything else under the Closte client URL gets a local Closte-shaped refusal
 * (403, 404, 405, 400 or 401): nothing sent, nothing queued, nothing forgotten.
 *
 * When the sidecar cannot be reached the caller gets a Closte-shaped HTTP 503
 * response (never a WP_Error, which Ultimate Multisite's add code cannot
 * handle), and an add or delete is queued for the native door.
 */
final class Closte_Operator_Router {

	const CLOSTE_HOST = 'app.closte.com';
	const CLOSTE_PATH = '/api/client/';

	/**
	 * The calls the Closte client makes: path under /api/client/ => method.
	 * Ultimate Multisite posts adddomainalias, deletedomainalias and, after an
	 * add, probes the SSL endpoints; Closte's own callers read getdomains with
	 * a GET.
	 */
	const ROUTES = array(
		'adddomainalias'      => 'POST',
		'deletedomainalias'   => 'POST',
		'getdomains'          => 'GET',
		'ssl/install'         => 'POST',
		'installssl'          => 'POST',
		'ssl'                 => 'POST',
		'certificate/install' => 'POST',
		'ssl/status'          => 'POST',
	);

	/**
	 * Constructor.
	 *
	 * @param Closte_Operator_Sidecar $sidecar The sidecar client.
	 * @param Closte_Operator_Queue   $queue   The write queue.
	 */
	public function __construct(
		private Closte_Operator_Sidecar $sidecar,
		private Closte_Operator_Queue $queue
	) {}

	/**
	 * Filter callback for `pre_http_request`.
	 *
	 * @param false|array|object $preempt A response from an earlier filter, or false.
	 * @param array              $args    Request arguments.
	 * @param string             $url     Request URL.
	 * @return false|array|object
	 */
	public function filter( $preempt, $args, $url ) {
		if ( false !== $preempt || ! is_string( $url ) || null === self::endpoint( $url ) ) {
			return $preempt;
		}
		$args    = is_array( $args ) ? $args : array();
		$request = $this->validate( $url, $args );
		if ( isset( $request['refusal'] ) ) {
			return self::refusal( $request['refusal'][0], $request['refusal'][1] );
		}
		return $this->send( $request );
	}

	/**
	 * The path under /api/client/ when `$url` is Closte's client API, else null.
	 *
	 * @param string $url A URL.
	 * @return string|null
	 */
	public static function endpoint( string $url ): ?string {
		$parts = parse_url( $url ); // phpcs:ignore WordPress.WP.AlternativeFunctions.parse_url_parse_url -- no WordPress needed here.
		if ( ! is_array( $parts ) || ! isset( $parts['host'] ) || self::CLOSTE_HOST !== strtolower( $parts['host'] ) ) {
			return null;
		}
		$path = isset( $parts['path'] ) ? $parts['path'] : '';
		if ( 0 !== strpos( $path, self::CLOSTE_PATH ) ) {
			return null;
		}
		return trim( substr( $path, strlen( self::CLOSTE_PATH ) ), '/' );
	}

	/**
	 * Checks a request to the Closte client URL against what the Closte
	 * client sends, and reads it. Pure: nothing is sent or queued here.
	 *
	 * @param string $url  A Closte client API URL.
	 * @param array  $args Request arguments as WordPress's HTTP API has them.
	 * @return array Either `refusal` => [status, reason], or the request to
	 *               send: endpoint, method, query and body (form fields, the
	 *               key already swapped for the token), timeout.
	 */
	public function validate( string $url, array $args ): array {
		$endpoint = (string) self::endpoint( $url );
		$method   = strtoupper( isset( $args['method'] ) && is_string( $args['method'] ) ? $args['method'] : 'GET' );
		if ( ! empty( $args['reject_unsafe_urls'] ) ) {
			return array( 'refusal' => array( 403, 'a safe request (wp_safe_remote_*: pingbacks, embeds, URL previews) never reaches the closte-operator sidecar' ) );
		}
		if ( ! isset( self::ROUTES[ $endpoint ] ) ) {
			return array( 'refusal' => array( 404, sprintf( '%s is not a call of the Closte client; closte-operator routes only %s', $endpoint, implode( ', ', array_keys( self::ROUTES ) ) ) ) );
		}
		if ( self::ROUTES[ $endpoint ] !== $method ) {
			return array( 'refusal' => array( 405, sprintf( '%s takes %s only', $endpoint, self::ROUTES[ $endpoint ] ) ) );
		}

		$query = array();
		$raw   = parse_url( $url, PHP_URL_QUERY ); // phpcs:ignore WordPress.WP.AlternativeFunctions.parse_url_parse_url -- no WordPress needed here.
		if ( is_string( $raw ) && '' !== $raw ) {
			parse_str( $raw, $query );
		}
		$headers = isset( $args['headers'] ) && is_array( $args['headers'] ) ? $args['headers'] : array();
		$type    = strtolower( self::header( $headers, 'content-type' ) );
		$body    = isset( $args['body'] ) ? $args['body'] : null;
		if ( '' !== $type && false === strpos( $type, 'application/x-www-form-urlencoded' ) ) {
			return array( 'refusal' => array( 400, 'the body is not form-encoded' ) );
		}
		if ( is_string( $body ) ) {
			parse_str( $body, $fields );
			$body = $fields;
		} elseif ( null !== $body && ! is_array( $body ) ) {
			return array( 'refusal' => array( 400, 'the body is not form-encoded' ) );
		}
		$body = is_array( $body ) ? $body : array();
		if ( 'GET' === $method ) {
			$query = array_merge( $query, $body ); // WordPress sends an array body of a GET as its query.
			$body  = array();
		}

		// The key where the client puts it (the form of a POST, the query of a
		// GET), and every other copy of it, must be the placeholder.
		$key      = (string) $this->sidecar->config->client_key;
		$expected = 'GET' === $method ? $query : $body;
		if ( '' === $key ) {
			return array( 'refusal' => array( 401, 'CLOSTE_CLIENT_API_KEY is not defined in wp-config.php; closte-operator routes only calls that carry it' ) );
		}
		if ( ! isset( $expected['apikey'] ) || ! self::is_key( $key, $expected['apikey'] )
			|| ( isset( $query['apikey'] ) && ! self::is_key( $key, $query['apikey'] ) )
			|| ( isset( $body['apikey'] ) && ! self::is_key( $key, $body['apikey'] ) ) ) {
			return array( 'refusal' => array( 401, 'apikey is not CLOSTE_CLIENT_API_KEY' ) );
		}
		$token = $this->sidecar->config->token;
		if ( isset( $query['apikey'] ) ) {
			$query['apikey'] = $token;
		}
		if ( isset( $body['apikey'] ) ) {
			$body['apikey'] = $token;
		}

		// Never longer than the sidecar's timeout, whatever the caller allows (45 s for Ultimate Multisite).
		$timeout = $this->sidecar->config->timeout;
		if ( isset( $args['timeout'] ) && (float) $args['timeout'] > 0 ) {
			$timeout = min( (float) $args['timeout'], $timeout );
		}
		return compact( 'endpoint', 'method', 'query', 'body', 'timeout' );
	}

	/**
	 * Sends a validated request to the sidecar and returns WordPress's
	 * response array; an add or delete goes through the queue.
	 *
	 * @param array $request What validate() returned.
	 * @return array
	 */
	private function send( array $request ): array {
		$endpoint = $request['endpoint'];
		$method   = $request['method'];
		$query    = $request['query'];
		$timeout  = $request['timeout'];
		$op       = self::operation( $endpoint, $query, $request['body'] );

		// Closte's API is form-encoded, and so is the sidecar's door to it.
		$send = array( 'Accept' => 'application/json' );
		$body = null;
		if ( 'GET' !== $method ) {
			$send['Content-Type'] = 'application/x-www-form-urlencoded';
			$body                 = http_build_query( $request['body'], '', '&' );
		}
		$call = function () use ( $method, $endpoint, $query, $body, $send, $timeout ) {
			return $this->sidecar->closte( $method, $endpoint, http_build_query( $query, '', '&' ), $body, $send, $timeout );
		};

		if ( null === $op ) {
			if ( $this->queue->is_down() ) {
				$result = Closte_Operator_Result::unreachable( 'it was unreachable moments ago' );
			} else {
				$result = $call();
				$this->queue->observe( $result );
			}
		} else {
			$result = $this->queue->attempt( $op, $call ) ?? Closte_Operator_Result::unreachable( 'it was unreachable moments ago' );
		}

		if ( ! $result->reached() ) {
			$error = 'closte-operator sidecar unreachable (' . $result->error . ')';
			if ( null !== $op ) {
				$error .= 'queued' === $this->queue->last_outcome()
					? '; the change is queued and will be retried'
					: '; the change was not queued (see the rejected changes)';
			}
			return self::response( 503, self::failure_body( $error ) );
		}
		return self::response( $result->status, $result->body );
	}

	/**
	 * A local refusal, in Closte's shape: `{"success":false,"error":...}`.
	 *
	 * @param int    $status HTTP status.
	 * @param string $reason Why.
	 * @return array
	 */
	public static function refusal( int $status, string $reason ): array {
		return self::response( $status, self::failure_body( 'closte-operator refused this request: ' . $reason ) );
	}

	/**
	 * Whether a request's `apikey` is the placeholder (in constant time).
	 *
	 * @param string $key   CLOSTE_CLIENT_API_KEY.
	 * @param mixed  $given The request's `apikey`.
	 * @return bool
	 */
	private static function is_key( string $key, $given ): bool {
		return ( is_string( $given ) || is_int( $given ) ) && hash_equals( $key, (string) $given );
	}

	/**
	 * Closte's failure body.
	 *
	 * @param string $error The error.
	 * @return string
	 */
	private static function failure_body( string $error ): string {
		return (string) json_encode( // phpcs:ignore WordPress.WP.AlternativeFunctions.json_encode_json_encode -- runs without WordPress in the unit tests.
			array(
				'success' => false,
				'error'   => $error,
			),
			JSON_UNESCAPED_SLASHES
		);
	}

	/**
	 * The native-door operation that an add or delete with a domain stands for.
	 *
	 * @param string $endpoint Path under /api/client/.
	 * @param array  $query    Query parameters.
	 * @param array  $body     Form parameters.
	 * @return array|null
	 */
	public static function operation( string $endpoint, array $query, array $body ): ?array {
		$params = array_merge( $query, $body );
		$domain = isset( $params['domain'] ) && is_scalar( $params['domain'] ) ? Closte_Operator_Domains::normalize( (string) $params['domain'] ) : '';
		if ( '' === $domain ) {
			return null;
		}
		switch ( strtolower( $endpoint ) ) {
			case 'adddomainalias':
				return Closte_Operator_Queue::put( $domain, null );
			case 'deletedomainalias':
				return Closte_Operator_Queue::delete( $domain );
		}
		return null;
	}

	/**
	 * A response array in the shape wp_remote_request() returns.
	 *
	 * @param int    $status HTTP status.
	 * @param string $body   Body.
	 * @return array
	 */
	public static function response( int $status, string $body ): array {
		$messages = array(
			200 => 'OK',
			201 => 'Created',
			204 => 'No Content',
			400 => 'Bad Request',
			401 => 'Unauthorized',
			403 => 'Forbidden',
			404 => 'Not Found',
			405 => 'Method Not Allowed',
			409 => 'Conflict',
			429 => 'Too Many Requests',
			500 => 'Internal Server Error',
			502 => 'Bad Gateway',
			503 => 'Service Unavailable',
			504 => 'Gateway Timeout',
		);
		return array(
			'headers'  => array( 'content-type' => 'application/json' ),
			'body'     => $body,
			'response' => array(
				'code'    => $status,
				'message' => isset( $messages[ $status ] ) ? $messages[ $status ] : '',
			),
			'cookies'  => array(),
			'filename' => null,
		);
	}

	/**
	 * A request header's value, whatever the case of its name.
	 *
	 * @param array  $headers Headers.
	 * @param string $name    Lower-case name.
	 * @return string
	 */
	private static function header( array $headers, string $name ): string {
		foreach ( $headers as $key => $value ) {
			if ( strtolower( (string) $key ) === $name ) {
				return is_array( $value ) ? implode( ',', $value ) : (string) $value;
			}
		}
		return '';
	}
}
