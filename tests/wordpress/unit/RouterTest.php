<?php
/**
 * Closte API requests go to the sidecar's Closte door with the token.
 *
 * @package Closte_Operator
 */

final class RouterTest extends Closte_Operator_Test_Case {

	const CLOSTE = 'https://app.closte.com/api/client/';

	private Closte_Operator_Router $router;

	protected function setUp(): void {
		parent::setUp();
		$this->router = new Closte_Operator_Router( $this->sidecar, $this->queue );
	}

	/**
	 * What Ultimate Multisite's Closte_Host_Provider passes to wp_remote_post:
	 * the placeholder as `apikey` in a form body, 45 s, its own headers.
	 */
	private static function um_args( array $data, mixed $key = self::PLACEHOLDER ): array {
		return array(
			'method'   => 'POST',
			'blocking' => true,
			'timeout'  => 45,
			'headers'  => array(
				'Content-Type' => 'application/x-www-form-urlencoded',
				'User-Agent'   => 'WP-Ultimo-Closte-Integration/2.0',
			),
			'body'     => array_merge( array( 'apikey' => $key ), $data ),
		);
	}

	/**
	 * A call as Ultimate Multisite makes it (send_closte_api_request).
	 */
	private function post( string $endpoint, array $data ) {
		return $this->router->filter( false, self::um_args( $data ), self::CLOSTE . $endpoint );
	}

	private static function form( ?string $body ): array {
		parse_str( (string) $body, $fields );
		return $fields;
	}

	/**
	 * A pending delete for old.example.com and the breaker closed: what a
	 * refused request must leave exactly as it is.
	 */
	private function pending(): array {
		$this->transport->always( 503, '{"error":"Kubernetes API server unreachable"}' );
		$this->queue->attempt( Closte_Operator_Queue::delete( 'old.example.com' ) );
		$this->transport->requests = array();
		$this->rows->writes        = array();
		$this->scheduled           = array();
		$this->transport->always( 200, '{"success":true}' );
		return array( $this->rows->rows, $this->rows->rejected_rows, $this->store->values );
	}

	/**
	 * A local Closte-shaped refusal: nothing sent, nothing queued, nothing forgotten.
	 */
	private function assertRefused( int $status, $response, array $before, string $why = '' ): void {
		$this->assertIsArray( $response, 'a response, never a WP_Error: ' . $why );
		$this->assertSame( $status, $response['response']['code'], $why . ': ' . $response['body'] );
		$body = json_decode( $response['body'], true );
		$this->assertFalse( $body['success'], $why );
		$this->assertStringStartsWith( 'closte-operator refused this request: ', $body['error'], $why );
		$this->assertSame( array(), $this->transport->requests, 'nothing sent: ' . $why );
		$this->assertSame( array(), $this->rows->writes, 'no queue change: ' . $why );
		$this->assertSame( array(), $this->scheduled, 'nothing scheduled: ' . $why );
		$this->assertSame( $before, array( $this->rows->rows, $this->rows->rejected_rows, $this->store->values ), 'nothing forgotten: ' . $why );
		$this->assertStringNotContainsString( self::TOKEN, serialize( $response ), $why );
	}

	public function test_only_closte_client_api_urls_are_intercepted(): void {
		$this->assertSame( 'adddomainalias', Closte_Operator_Router::endpoint( self::CLOSTE . 'adddomainalias' ) );
		$this->assertSame( 'ssl/install', Closte_Operator_Router::endpoint( 'https://APP.closte.com/api/client/ssl/install' ) );
		$this->assertSame( 'getdomains', Closte_Operator_Router::endpoint( self::CLOSTE . 'getdomains?apikey=x' ) );
		$this->assertNull( Closte_Operator_Router::endpoint( 'https://app.closte.com/api/other' ) );
		$this->assertNull( Closte_Operator_Router::endpoint( 'https://closte.com/api/client/adddomainalias' ) );
		$this->assertNull( Closte_Operator_Router::endpoint( 'https://app.closte.com.evil.test/api/client/adddomainalias' ) );
		$this->assertNull( Closte_Operator_Router::endpoint( 'not a url' ) );

		$this->assertFalse( $this->router->filter( false, array(), 'https://wordpress.org/' ) );
		$earlier = array( 'response' => array( 'code' => 418 ) );
		$this->assertSame( $earlier, $this->router->filter( $earlier, array(), self::CLOSTE . 'getdomains' ) );
		$this->assertSame( array(), $this->transport->requests );
	}

	public function test_an_add_as_ultimate_multisite_sends_it_reaches_the_door_with_the_token(): void {
		$this->transport->always( 200, '{"success":true}' );
		$response = $this->post(
			'adddomainalias',
			array(
				'domain'   => 'shop.example.com',
				'wildcard' => false,
			)
		);

		$this->assertSame( 200, $response['response']['code'] );
		$this->assertSame( '{"success":true}', $response['body'] );
		$this->assertCount( 1, $this->transport->requests );
		$request = $this->transport->requests[0];
		$this->assertSame( 'POST', $request['method'] );
		$this->assertSame( self::SIDECAR . '/api/client/adddomainalias', $request['url'] );
		$this->assertSame( 'application/x-www-form-urlencoded', $request['headers']['Content-Type'] );
		$this->assertSame(
			array(
				'apikey'   => self::TOKEN,
				'domain'   => 'shop.example.com',
				'wildcard' => '0',
			),
			self::form( $request['body'] )
		);
		$this->assertSame( 2.0, $request['timeout'], 'never the caller\'s 45 s' );
		$this->assertStringNotContainsString( self::PLACEHOLDER, serialize( $request ) );
		$this->assertSame( array(), $this->queue->entries() );
	}

	public function test_every_call_of_the_closte_client_is_routed(): void {
		$this->transport->always( 200, '{"success":true}' );
		// Ultimate Multisite: test connection, add, the SSL probes, SSL status, remove.
		$this->post( 'adddomainalias', array() );
		$this->post(
			'adddomainalias',
			array(
				'domain'   => '*.example.com',
				'wildcard' => true,
			)
		);
		foreach ( array( 'ssl/install', 'installssl', 'ssl', 'certificate/install' ) as $probe ) {
			$this->post(
				$probe,
				array(
					'domain' => 'shop.example.com',
					'type'   => 'letsencrypt',
				)
			);
		}
		$this->post( 'ssl/status', array( 'domain' => 'shop.example.com' ) );
		$this->post(
			'deletedomainalias',
			array(
				'domain'   => 'shop.example.com',
				'wildcard' => false,
			)
		);
		// Closte's own callers: getdomains with the key in the query.
		$this->router->filter( false, array( 'method' => 'GET' ), self::CLOSTE . 'getdomains?apikey=' . self::PLACEHOLDER );

		$this->assertSame(
			array(
				'POST /api/client/adddomainalias',
				'POST /api/client/adddomainalias',
				'POST /api/client/ssl/install',
				'POST /api/client/installssl',
				'POST /api/client/ssl',
				'POST /api/client/certificate/install',
				'POST /api/client/ssl/status',
				'POST /api/client/deletedomainalias',
				'GET /api/client/getdomains?apikey=' . self::TOKEN,
			),
			$this->transport->lines()
		);
		$this->assertSame( array( 'apikey' => self::TOKEN ), self::form( $this->transport->requests[0]['body'] ) );
		$this->assertSame( '1', self::form( $this->transport->requests[1]['body'] )['wildcard'] );
		$this->assertStringNotContainsString( self::PLACEHOLDER, serialize( $this->transport->requests ) );
	}

	public function test_the_key_is_replaced_in_a_query_string_and_in_a_string_body(): void {
		$this->transport->always( 200, '{"success":true,"domains":[]}' );
		$this->router->filter(
			false,
			array(
				'method' => 'POST',
				'body'   => 'apikey=' . self::PLACEHOLDER . '&domain=%2A.example.com&wildcard=1',
			),
			self::CLOSTE . 'deletedomainalias'
		);
		$this->router->filter(
			false,
			array(
				'method' => 'GET',
				'body'   => array( 'apikey' => self::PLACEHOLDER ),
			),
			self::CLOSTE . 'getdomains'
		);

		list( $delete, $get_array ) = $this->transport->requests;
		$this->assertSame(
			array(
				'apikey'   => self::TOKEN,
				'domain'   => '*.example.com',
				'wildcard' => '1',
			),
			self::form( $delete['body'] )
		);
		$this->assertSame( self::SIDECAR . '/api/client/getdomains?apikey=' . self::TOKEN, $get_array['url'] );
		$this->assertNull( $get_array['body'] );
		$this->assertStringNotContainsString( self::PLACEHOLDER, serialize( $this->transport->requests ) );
	}

	public function test_a_safe_request_is_refused_whatever_it_carries(): void {
		$before = $this->pending();
		// wp_safe_remote_post(): a pingback, the oEmbed proxy, URL details, enclosures.
		$args = self::um_args( array( 'domain' => 'old.example.com' ) ) + array( 'reject_unsafe_urls' => true );
		$this->assertRefused( 403, $this->router->filter( false, $args, self::CLOSTE . 'deletedomainalias' ), $before, 'safe delete with the key' );
		$this->assertRefused( 403, $this->router->filter( false, array( 'reject_unsafe_urls' => 1 ), self::CLOSTE . 'getdomains?apikey=' . self::PLACEHOLDER ), $before, 'safe get' );
		$this->assertRefused( 403, $this->router->filter( false, array( 'reject_unsafe_urls' => true ), self::CLOSTE . 'anything' ), $before, 'safe, unknown path' );
		$args['reject_unsafe_urls'] = false;
		$this->assertSame( 200, $this->router->filter( false, $args, self::CLOSTE . 'deletedomainalias' )['response']['code'], 'reject_unsafe_urls false is not a safe request' );
	}

	public function test_a_wrong_or_missing_key_is_refused(): void {
		$before = $this->pending();
		$delete = fn( array $args, string $url = self::CLOSTE . 'deletedomainalias' ) => $this->router->filter( false, $args, $url );
		$data   = array( 'domain' => 'old.example.com' );

		$this->assertRefused( 401, $delete( self::um_args( $data, 'real-closte-key-0a9d' ) ), $before, 'a wrong key' );
		$this->assertRefused( 401, $delete( self::um_args( $data, '' ) ), $before, 'an empty key' );
		$this->assertRefused( 401, $delete( self::um_args( $data, self::PLACEHOLDER . 'x' ) ), $before, 'a longer key' );
		$this->assertRefused(
			401,
			$delete(
				array(
					'method' => 'POST',
					'body'   => $data,
				)
			),
			$before,
			'no key (a form plugin posting to the Closte URL)'
		);
		$this->assertRefused( 401, $delete( array( 'method' => 'POST' ) ), $before, 'no body at all' );
		$this->assertRefused(
			401,
			$delete(
				array(
					'method' => 'POST',
					'body'   => $data,
				),
				self::CLOSTE . 'deletedomainalias?apikey=' . self::PLACEHOLDER
			),
			$before,
			'the key in the query of a POST'
		);
		$this->assertRefused( 401, $delete( self::um_args( $data ), self::CLOSTE . 'deletedomainalias?apikey=wrong' ), $before, 'a second, wrong key in the query' );
		$this->assertRefused( 401, $delete( self::um_args( $data, array( self::PLACEHOLDER ) ) ), $before, 'an array for a key' );
		$this->assertRefused( 401, $delete( array( 'method' => 'POST', 'body' => 'domain=old.example.com&apikey=nope' ) ), $before, 'a wrong key in a string body' );
		$this->assertRefused( 401, $this->router->filter( false, array( 'method' => 'GET' ), self::CLOSTE . 'getdomains' ), $before, 'a keyless read' );
		$this->assertRefused( 401, $this->router->filter( false, array( 'method' => 'GET' ), self::CLOSTE . 'getdomains?apikey=wrong' ), $before, 'a read with a wrong key' );
	}

	public function test_without_a_placeholder_in_wp_config_nothing_is_routed(): void {
		$sidecar = new Closte_Operator_Sidecar( $this->transport, new Closte_Operator_Config( self::SIDECAR, self::TOKEN, 2.0 ) );
		$router  = new Closte_Operator_Router( $sidecar, $this->queue );
		$before  = $this->pending();
		$this->assertRefused( 401, $router->filter( false, self::um_args( array( 'domain' => 'old.example.com' ), '' ), self::CLOSTE . 'deletedomainalias' ), $before, 'an empty key, none defined' );
		$response = $router->filter( false, self::um_args( array( 'domain' => 'old.example.com' ), 'anything' ), self::CLOSTE . 'deletedomainalias' );
		$this->assertRefused( 401, $response, $before, 'any key, none defined' );
		$this->assertStringContainsString( 'CLOSTE_CLIENT_API_KEY is not defined', $response['body'] );
	}

	public function test_a_method_the_client_does_not_use_is_refused(): void {
		$before = $this->pending();
		$this->assertRefused( 405, $this->router->filter( false, array( 'method' => 'GET' ), self::CLOSTE . 'deletedomainalias?apikey=' . self::PLACEHOLDER . '&domain=old.example.com' ), $before, 'GET deletedomainalias' );
		$this->assertRefused( 405, $this->router->filter( false, array(), self::CLOSTE . 'deletedomainalias?apikey=' . self::PLACEHOLDER . '&domain=old.example.com' ), $before, 'no method: GET' );
		foreach ( array( 'PUT', 'DELETE', 'PATCH', 'HEAD' ) as $method ) {
			$args           = self::um_args( array( 'domain' => 'old.example.com' ) );
			$args['method'] = $method;
			$this->assertRefused( 405, $this->router->filter( false, $args, self::CLOSTE . 'deletedomainalias' ), $before, "$method deletedomainalias" );
		}
		$this->assertRefused( 405, $this->post( 'getdomains', array() ), $before, 'POST getdomains' );
		$response = $this->router->filter( false, array( 'method' => 'GET' ), self::CLOSTE . 'adddomainalias?apikey=' . self::PLACEHOLDER );
		$this->assertRefused( 405, $response, $before, 'GET adddomainalias' );
		$this->assertSame( 'Method Not Allowed', $response['response']['message'] );
	}

	public function test_a_path_the_client_does_not_use_is_refused(): void {
		$before = $this->pending();
		foreach ( array( 'deletedomain', 'DeleteDomainAlias', '../client/deletedomainalias', './deletedomainalias', 'deletedomainalias/x', 'ssl/revoke', '', 'getdomains.json' ) as $path ) {
			$this->assertRefused( 404, $this->post( $path, array( 'domain' => 'old.example.com' ) ), $before, "path '$path'" );
		}
	}

	public function test_a_body_that_is_not_a_form_is_refused(): void {
		$before = $this->pending();
		$this->assertRefused(
			400,
			$this->router->filter(
				false,
				array(
					'method'  => 'POST',
					'headers' => array( 'Content-Type' => 'application/json' ),
					'body'    => '{"apikey":"' . self::PLACEHOLDER . '","domain":"old.example.com"}',
				),
				self::CLOSTE . 'deletedomainalias'
			),
			$before,
			'a JSON body'
		);
	}

	public function test_a_sidecar_url_that_would_expose_the_token_gets_nothing(): void {
		foreach ( array( 'http://sidecar.example:8087', 'http://10.0.0.5:8087', 'http://127.0.0.1.nip.io:8087' ) as $url ) {
			$config = new Closte_Operator_Config( $url, self::TOKEN, 2.0, '', self::PLACEHOLDER );
			$this->assertStringContainsString( 'neither a loopback address nor https', $config->url_error );
			$sidecar = new Closte_Operator_Sidecar( $this->transport, $config );
			$router  = new Closte_Operator_Router( $sidecar, $this->queue );

			$response = $router->filter( false, self::um_args( array( 'domain' => 'shop.example.com' ) ), self::CLOSTE . 'adddomainalias' );
			$this->assertSame( 503, $response['response']['code'] );
			$this->assertStringContainsString( 'not sent: CLOSTE_OPERATOR_SIDECAR_URL', $response['body'] );
			$this->assertFalse( $sidecar->health()->reached() );
			$this->assertFalse( $sidecar->domains()->reached() );
			$this->assertFalse( $sidecar->put_domain( 'shop.example.com', 2 )->reached() );
			$this->assertSame( array(), $this->transport->requests, "nothing sent to $url" );
			$this->now += Closte_Operator_Queue::BREAKER_SECONDS;
		}
	}

	public function test_the_sidecar_answer_comes_back_as_it_is(): void {
		$rejected = '{"success":false,"error":"Invalid or empty domain: "}';
		$this->transport->always( 200, $rejected );
		$response = $this->post( 'adddomainalias', array( 'apikey' => self::PLACEHOLDER ) );
		$this->assertSame( $rejected, $response['body'], 'Ultimate Multisite\'s test connection compares it byte for byte' );

		$this->transport->always( 401, '{"success":false,"error":"invalid API key"}' );
		$response = $this->post( 'adddomainalias', array( 'apikey' => self::PLACEHOLDER ) );
		$this->assertSame( 401, $response['response']['code'] );
		$this->assertSame( 'Unauthorized', $response['response']['message'] );
	}

	public function test_an_unreachable_sidecar_gives_a_closte_shaped_503_and_queues_the_add(): void {
		$this->transport->always( 0 );
		$response = $this->post(
			'adddomainalias',
			array(
				'apikey'   => self::PLACEHOLDER,
				'domain'   => 'Shop.Example.com',
				'wildcard' => 0,
			)
		);

		$this->assertIsArray( $response, 'never a WP_Error' );
		$this->assertSame( 503, $response['response']['code'] );
		$body = json_decode( $response['body'], true );
		$this->assertFalse( $body['success'] );
		$this->assertStringContainsString( 'sidecar unreachable', $body['error'] );
		$this->assertStringContainsString( 'queued', $body['error'] );
		$this->assertSame( array( 'domain:shop.example.com' => array( 'put', 1, 0 ) ), $this->queued() );
		$this->assertNull( $this->queue->entries()['domain:shop.example.com']['site'] );
		$this->assertTrue( $this->queue->is_down() );
		$this->assertSame( array( $this->now ), $this->scheduled, 'a retry is scheduled for the next cron run' );
	}

	public function test_a_call_that_finds_the_queue_full_says_it_was_not_queued(): void {
		for ( $i = 0; $i < Closte_Operator_Queue::MAX_ENTRIES; $i++ ) {
			$this->rows->put( "domain:d$i.example.com", Closte_Operator_Queue::delete( "d$i.example.com" ) + array( 'attempts' => 1, 'conflicts' => 0, 'next' => $this->now, 'error' => 'x', 'since' => $this->now ) );
		}
		$this->transport->always( 0 );
		$response = $this->post( 'adddomainalias', array( 'domain' => 'shop.example.com' ) );
		$this->assertSame( 503, $response['response']['code'] );
		$this->assertStringContainsString( 'the change was not queued', $response['body'] );
		$this->assertStringContainsString( 'the queue is full', $this->queue->failures()[0]['error'] );
		$this->assertSame( 'dropped', $this->queue->last_outcome() );
	}

	public function test_the_token_never_appears_in_an_answer_or_the_queue(): void {
		$this->transport->answer = fn( $request ) => Closte_Operator_Result::unreachable( 'Operation timed out for ' . $request['url'] );
		$response = $this->router->filter( false, array( 'method' => 'GET' ), self::CLOSTE . 'getdomains?apikey=' . self::PLACEHOLDER );
		$this->assertStringContainsString( 'timed out for http://127.0.0.1:8087/api/client/getdomains?apikey=[redacted]', $response['body'] );
		$this->now += Closte_Operator_Queue::BREAKER_SECONDS;
		$this->post( 'adddomainalias', array( 'domain' => 'shop.example.com' ) );
		$this->queue->drain();
		$this->assertStringNotContainsString( self::TOKEN, serialize( array( $response, $this->store->values, $this->rows->rows, $this->rows->rejected_rows ) ) );
	}

	public function test_while_the_breaker_is_open_nothing_waits_on_the_sidecar(): void {
		$this->transport->always( 0 );
		$this->post( 'adddomainalias', array( 'domain' => 'a.example.com' ) );
		$this->assertCount( 1, $this->transport->requests );

		$response = $this->post( 'deletedomainalias', array( 'domain' => 'b.example.com' ) );
		$get      = $this->router->filter( false, array( 'method' => 'GET' ), self::CLOSTE . 'getdomains?apikey=' . self::PLACEHOLDER );
		$this->assertCount( 1, $this->transport->requests, 'no new request while the breaker is open' );
		$this->assertSame( 503, $response['response']['code'] );
		$this->assertSame( 503, $get['response']['code'] );
		$this->assertSame( array( 'put', 'delete' ), array_column( $this->queued(), 0 ) );

		$this->now += Closte_Operator_Queue::BREAKER_SECONDS;
		$this->transport->always( 200, '{"success":true}' );
		$this->post( 'adddomainalias', array( 'domain' => 'c.example.com' ) );
		$this->assertCount( 2, $this->transport->requests, 'tried again once the breaker closed' );
		$this->assertFalse( $this->queue->is_down() );
	}

	public function test_test_connection_and_reads_are_not_queued(): void {
		$this->transport->always( 0 );
		$response = $this->post( 'adddomainalias', array( 'apikey' => self::PLACEHOLDER ) );
		$this->assertSame( 503, $response['response']['code'] );
		$this->assertStringNotContainsString( 'queued', json_decode( $response['body'], true )['error'] );
		$this->now += Closte_Operator_Queue::BREAKER_SECONDS;
		$this->assertSame( 503, $this->router->filter( false, array( 'method' => 'GET' ), self::CLOSTE . 'getdomains?apikey=' . self::PLACEHOLDER )['response']['code'] );
		$this->assertSame( 503, $this->post( 'ssl/install', array( 'domain' => 'shop.example.com' ) )['response']['code'] );
		$this->assertSame( array(), $this->queue->entries() );
	}

	public function test_a_sidecar_error_is_passed_on_and_the_write_queued(): void {
		$this->transport->always( 503, '{"success":false,"error":"Kubernetes API server unreachable"}' );
		$response = $this->post( 'deletedomainalias', array( 'domain' => 'old.example.com' ) );
		$this->assertSame( 503, $response['response']['code'] );
		$this->assertSame( '{"success":false,"error":"Kubernetes API server unreachable"}', $response['body'] );
		$this->assertSame( array( 'domain:old.example.com' => array( 'delete', 1, 0 ) ), $this->queued() );
		$this->assertFalse( $this->queue->is_down(), 'the sidecar itself answered' );
	}

	public function test_a_later_successful_write_cancels_the_queued_one(): void {
		$this->transport->always( 0 );
		$this->post( 'deletedomainalias', array( 'domain' => 'shop.example.com' ) );
		$this->now += Closte_Operator_Queue::BREAKER_SECONDS;
		$this->transport->always( 200, '{"success":true}' );
		$this->post( 'adddomainalias', array( 'domain' => 'shop.example.com' ) );
		$this->assertSame( array(), $this->queue->entries(), 'the old delete must not undo the add' );
	}
}
